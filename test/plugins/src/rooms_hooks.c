/* A test plugin with the room hooks. Joins, leaves and presence are sent back
 * as widget events ({"joined":ID} to the room, {"online":BOOL} to the user);
 * on_post refuses a text with "forbidden" in it and rewrites one with
 * "shout" in it to upper case, with data {"shouted":true}. */
#include <ctype.h>
#include <hutopia/plugin.h>
#include <stdio.h>
#include <string.h>

static const hut_host* host;
static char shouted[1024];
static const hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                                 .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                                 .name = "rooms_hooks",
                                                 .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static void tell(hut_plugin* self, hut_target target, const char* id, const char* key, const char* value) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "{\"%s\":%s}", key, value);
  host->send_widget_event(self, target, id, msg, (size_t)n);
}

static void joined(hut_plugin* self, void* user_data, const char* room, const hut_user* user) {
  (void)user_data;
  char id[128];
  snprintf(id, sizeof id, "\"%s\"", user->id);
  tell(self, HUT_TARGET_ROOM, room, "joined", id);
}

static void left(hut_plugin* self, void* user_data, const char* room, const hut_user* user) {
  (void)user_data;
  char id[128];
  snprintf(id, sizeof id, "\"%s\"", user->id);
  tell(self, HUT_TARGET_ROOM, room, "left", id);
}

static void online(hut_plugin* self, void* user_data, const hut_user* user) {
  (void)user_data;
  tell(self, HUT_TARGET_USER, user->id, "online", "true");
}

static void offline(hut_plugin* self, void* user_data, const hut_user* user) {
  (void)user_data;
  tell(self, HUT_TARGET_USER, user->id, "online", "false");
}

static int on_post(hut_plugin* self, void* user_data, hut_post* post) {
  (void)self;
  (void)user_data;
  if (strstr(post->text, "forbidden") != NULL) {
    post->refusal = "no forbidden words here";
    return HUT_EPERM;
  }
  if (strstr(post->text, "shout") != NULL) {
    size_t i = 0;
    for (; post->text[i] != '\0' && i + 1 < sizeof shouted; ++i)
      shouted[i] = (char)toupper((unsigned char)post->text[i]);
    shouted[i] = '\0';
    post->text = shouted;
    post->data_json = "{\"shouted\":true}";
  }
  return HUT_OK;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  host = h;
  hut_hooks hooks = {0};
  hooks.on_member_joined = joined;
  hooks.on_member_left = left;
  hooks.on_user_online = online;
  hooks.on_user_offline = offline;
  hooks.on_post = on_post;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

/* A test plugin for the ABI 1.1 room functions. Its `widget` requests are
 * {"do":"post","room":R,"text":T}, {"do":"history","room":R,"limit":N},
 * {"do":"members","room":R} and {"do":"event","room":R}: it posts as its bot
 * user, reads history or members, or sends {"hello":R} to the room's
 * members, and answers with what the host gave back ({"status":N} on errors).
 * {"do":"echo_rc","room":R} answers {"status":N}, what room_post returned when called
 * from its on_post hook. Its on_post refuses a text with "robots" in it (its
 * own posts are not shown to it) and tries to post again for a text with
 * "echo me" in it. */
#include <cjson/cJSON.h>
#include <hutopia/plugin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const hut_host* host;
static int echo_rc = 1; /* 1: on_post has not tried yet */
static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR, .abi_minor = 1, .name = "room_bot", .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static int reply_status(hut_plugin* self, uint64_t id, int status) {
  char out[64];
  int n = snprintf(out, sizeof out, "{\"status\":%d}", status);
  return host->reply(self, id, out, (size_t)n);
}

static void done(hut_plugin* self, void* arg, int status, const char* json, size_t len) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  if (status != HUT_OK) {
    reply_status(self, id, status);
    return;
  }
  host->reply(self, id, json, len);
}

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  cJSON* j = cJSON_ParseWithLength(req->data_json, req->data_len);
  const cJSON* what = cJSON_GetObjectItemCaseSensitive(j, "do");
  const cJSON* room = cJSON_GetObjectItemCaseSensitive(j, "room");
  const cJSON* text = cJSON_GetObjectItemCaseSensitive(j, "text");
  const cJSON* limit = cJSON_GetObjectItemCaseSensitive(j, "limit");
  void* arg = (void*)(uintptr_t)req->request_id;
  int rc = HUT_EINVAL;
  if (!cJSON_IsString(what) || !cJSON_IsString(room)) {
    rc = HUT_EINVAL;
  } else if (strcmp(what->valuestring, "post") == 0 && cJSON_IsString(text)) {
    rc = host->room_post(self, room->valuestring, text->valuestring, "{\"bot\":true}", done, arg);
  } else if (strcmp(what->valuestring, "history") == 0) {
    rc = host->room_history(self, room->valuestring, 0, cJSON_IsNumber(limit) ? limit->valueint : 50, done,
                            arg);
  } else if (strcmp(what->valuestring, "members") == 0) {
    size_t len = 0;
    rc = host->room_members(self, room->valuestring, NULL, 0, &len);
    if (rc == HUT_ERANGE) {
      char* buf = malloc(len + 1);
      rc = buf ? host->room_members(self, room->valuestring, buf, len + 1, &len) : HUT_ENOMEM;
      if (rc == HUT_OK) rc = host->reply(self, req->request_id, buf, len);
      free(buf);
    }
  } else if (strcmp(what->valuestring, "echo_rc") == 0) {
    rc = reply_status(self, req->request_id, echo_rc);
  } else if (strcmp(what->valuestring, "event") == 0) {
    char msg[256];
    int n = snprintf(msg, sizeof msg, "{\"hello\":\"%s\"}", room->valuestring);
    rc = host->send_widget_event(self, HUT_TARGET_ROOM, room->valuestring, msg, (size_t)n);
    if (rc >= 0) rc = reply_status(self, req->request_id, rc);
  }
  cJSON_Delete(j);
  if (rc < 0) reply_status(self, req->request_id, rc);
  return HUT_OK;
}

static int on_post(hut_plugin* self, void* user_data, hut_post* post) {
  (void)user_data;
  if (strstr(post->text, "robots") != NULL) {
    post->refusal = "room_bot: no robots talk";
    return HUT_EPERM;
  }
  if (strstr(post->text, "echo me") != NULL)
    echo_rc = host->room_post(self, post->room, "echo", NULL, NULL, NULL);
  return HUT_OK;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  host = h;
  if (!HUT_HOST_HAS(h, room_members)) {
    snprintf(err, errlen, "this space has no room functions (ABI 1.1)");
    return HUT_ENOTSUP;
  }
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  hooks.on_post = on_post;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

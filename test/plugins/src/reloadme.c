/* A test plugin built twice (-DRELOADME_VERSION="1" and "2") for reload: a
 * widget request {"op":"hold"} is taken and never answered; any other is
 * answered {"version":V}. */
#include <hutopia/plugin.h>
#include <string.h>

static const hut_host* host;
static const hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                                 .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                                 .name = "reloadme",
                                                 .version = RELOADME_VERSION};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  if (strstr(req->data_json, "\"hold\"") != NULL) return HUT_OK;
  static const char answer[] = "{\"version\":\"" RELOADME_VERSION "\"}";
  return host->reply(self, req->request_id, answer, sizeof answer - 1);
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  host = h;
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

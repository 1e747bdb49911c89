/* A test plugin that answers every widget request with the configuration
 * JSON its init received. */
#include <hutopia/plugin.h>
#include <stdlib.h>
#include <string.h>

static const hut_host* host;
static char* config;
static const hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                                 .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                                 .name = "config_probe",
                                                 .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  return host->reply(self, req->request_id, config, strlen(config));
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)err;
  (void)errlen;
  host = h;
  size_t n = strlen(config_json);
  config = malloc(n + 1);
  if (config == NULL) return HUT_ENOMEM;
  memcpy(config, config_json, n + 1);
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {
  (void)self;
  free(config);
  config = NULL;
}

/* echo: answers every `widget` request with the data it got. The benchmark
 * target of the bus, so the path is as short as the ABI allows: no parsing,
 * no copies on the plugin's side. */
#include <hutopia/plugin.h>

static const hut_host* host;

static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR,
    .abi_minor = HUT_PLUGIN_ABI_MINOR,
    .name = "echo",
    .version = "1.0.0",
};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  return host->reply(self, req->request_id, req->data_json, req->data_len);
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

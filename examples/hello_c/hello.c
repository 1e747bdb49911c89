/* The smallest widget plugin: <hello-card> asks the plugin and shows its answer. */
#include <hutopia/plugin.h>

static const hut_host* host;
static const char js[] =
    "customElements.define('hello-card', class extends HTMLElement { async connectedCallback() {\n"
    "  this.textContent = (await (this.hutopia || hutopia).widget('hello', null)).text; } });\n";
static const char answer[] = "{\"text\":\"Hello from a plugin!\"}";
static const hut_widget_desc widgets[] = {{"hello-card", "hello.js"}};
static const hut_plugin_descriptor desc = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                           .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                           .name = "hello",
                                           .version = "1.0.0",
                                           .widgets = widgets,
                                           .widget_count = 1};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &desc; }

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  return host->reply(self, req->request_id, answer, sizeof answer - 1);
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* me, const char* cfg, char* e, size_t n) {
  (void)cfg, (void)e, (void)n;
  host = h;
  hut_hooks hooks = {.on_widget = on_widget};
  host->register_asset(me, "hello.js", "text/javascript; charset=utf-8", js, sizeof js - 1);
  return host->register_hooks(me, &hooks, sizeof hooks);
}

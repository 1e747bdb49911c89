/* The smallest widget plugin: <hello-card> asks the plugin and shows its answer. */
#include <hutopia/plugin.h>

static const hut_host* host;
static const char js[] =
    "customElements.define('hello-card', class extends HTMLElement {\n"
    "  async connectedCallback() {\n"
    "    this.textContent = (await (this.hutopia || hutopia).widget('hello', null)).text;\n"
    "  }\n"
    "});\n";
static const char answer[] = "{\"text\":\"Hello from a plugin!\"}";
static const hut_widget_desc widgets[] = {{"hello-card", "hello.js"}};
static const hut_plugin_descriptor desc = {
    HUT_PLUGIN_ABI_MAJOR, HUT_PLUGIN_ABI_MINOR, "hello", "1.0.0", NULL, widgets, 1, 0, NULL, NULL, NULL, NULL};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &desc; }

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  return host->reply(self, req->request_id, answer, sizeof answer - 1);
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config, char* err, size_t n) {
  (void)config, (void)err, (void)n;
  host = h;
  hut_hooks hooks = {.on_widget = on_widget};
  host->register_asset(self, "hello.js", "text/javascript; charset=utf-8", js, sizeof js - 1);
  return host->register_hooks(self, &hooks, sizeof hooks);
}

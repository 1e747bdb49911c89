/* A test plugin that says when it starts and stops, to show load order:
 * init sends {"init":NAME} and fini {"fini":NAME} to everyone. Built with
 * -DPLUGIN_NAME and optionally -DREQUIRES. Its widget is <x-NAME>. */
#include <hutopia/plugin.h>
#include <string.h>

#ifdef REQUIRES
static const char* const requires_list[] = {REQUIRES, NULL};
#define REQUIRES_LIST requires_list
#else
#define REQUIRES_LIST NULL
#endif

static const hut_host* host;
static const hut_widget_desc widgets[] = {{"x-" PLUGIN_NAME, "widget.js"}};
static const hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                                 .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                                 .name = PLUGIN_NAME,
                                                 .version = "1",
                                                 .requires_plugins = REQUIRES_LIST,
                                                 .widgets = widgets,
                                                 .widget_count = 1};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  static const char msg[] = "{\"init\":\"" PLUGIN_NAME "\"}";
  host = h;
  return host->send_widget_event(self, HUT_TARGET_EVERYONE, NULL, msg, strlen(msg));
}

HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {
  static const char msg[] = "{\"fini\":\"" PLUGIN_NAME "\"}";
  host->send_widget_event(self, HUT_TARGET_EVERYONE, NULL, msg, strlen(msg));
}

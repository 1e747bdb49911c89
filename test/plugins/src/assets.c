/* A test plugin with embedded assets (assets_dist/) and one asset registered
 * at run time, runtime.txt. Its widget is <test-assets> from widget.js. */
#include <hutopia/plugin.h>

extern const size_t test_assets_count;
extern const char* const test_assets_paths[];
extern const char* const test_assets_types[];
extern const unsigned char* const test_assets_data[];
extern const size_t test_assets_sizes[];

static const hut_widget_desc widgets[] = {{"test-assets", "widget.js"}};
static hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                           .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                           .name = "assets",
                                           .version = "1",
                                           .widgets = widgets,
                                           .widget_count = 1};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) {
  descriptor.asset_count = test_assets_count;
  descriptor.asset_paths = test_assets_paths;
  descriptor.asset_types = test_assets_types;
  descriptor.asset_data = test_assets_data;
  descriptor.asset_sizes = test_assets_sizes;
  return &descriptor;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* host, hut_plugin* self, const char* config_json,
                                      char* err, size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  static const char text[] = "made at run time";
  int rc = host->register_asset(self, "runtime.txt", "text/plain; charset=utf-8", text, sizeof text - 1);
  if (rc != HUT_OK) return rc;
  /* Paths that would escape are refused. */
  if (host->register_asset(self, "../escape.txt", "text/plain", text, 1) != HUT_EINVAL ||
      host->register_asset(self, "/abs.txt", "text/plain", text, 1) != HUT_EINVAL ||
      host->register_asset(self, "a\\b.txt", "text/plain", text, 1) != HUT_EINVAL ||
      host->register_asset(self, "", "text/plain", text, 1) != HUT_EINVAL ||
      host->register_asset(self, "runtime.txt", "text/plain", text, 1) != HUT_EEXIST)
    return HUT_EINTERNAL;
  return HUT_OK;
}

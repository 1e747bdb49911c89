/* chat: the space's chat. Its widget, <hut-chat>, is a chat client over the
 * bus's room ops; its files are web/, embedded in the library. */
#include <hutopia/plugin.h>
#include <stdio.h>
#include <string.h>

/* Made by scripts/embed_assets.py from web/. */
extern const size_t chat_assets_count;
extern const char* const chat_assets_paths[];
extern const char* const chat_assets_types[];
extern const unsigned char* const chat_assets_data[];
extern const size_t chat_assets_sizes[];

static const hut_widget_desc widgets[] = {{"hut-chat", "chat.js"}};

static hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR,
    .abi_minor = HUT_PLUGIN_ABI_MINOR,
    .name = "chat",
    .version = "1.0.0",
    .widgets = widgets,
    .widget_count = 1,
};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) {
  descriptor.asset_count = chat_assets_count;
  descriptor.asset_paths = chat_assets_paths;
  descriptor.asset_types = chat_assets_types;
  descriptor.asset_data = chat_assets_data;
  descriptor.asset_sizes = chat_assets_sizes;
  return &descriptor;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  hut_hooks hooks = {0};
  return h->register_hooks(self, &hooks, sizeof hooks);
}

/* Compiled with -std=c11 -pedantic -Werror -Wall -Wextra: the build fails if
 * <hutopia/plugin.h> stops being pure C11. */
#include <hutopia/plugin.h>

int plugin_h_c11_check(const hut_host* host);

int plugin_h_c11_check(const hut_host* host) {
  hut_hooks hooks = {0};
  hut_plugin_descriptor descriptor = {0};
  (void)hooks;
  descriptor.abi_major = HUT_PLUGIN_ABI_MAJOR;
  descriptor.abi_minor = HUT_PLUGIN_ABI_MINOR;
  if (HUT_PLUGIN_ABI_VERSION_MAJOR(HUT_PLUGIN_ABI_VERSION) != descriptor.abi_major) return HUT_EINTERNAL;
  return HUT_HOST_HAS(host, post) ? HUT_OK : HUT_ENOTSUP;
}

/* A test plugin whose init fails with a message, unless its configuration
 * says {"answer": 42}. */
#include <cJSON.h>
#include <hutopia/plugin.h>
#include <stdio.h>
#include <stdlib.h>

static const hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                                 .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                                 .name = "init_fails",
                                                 .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static void never(hut_plugin* self, void* arg) {
  (void)self;
  (void)arg;
  abort();
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* host, hut_plugin* self, const char* config_json,
                                      char* err, size_t errlen) {
  (void)self;
  cJSON* config = cJSON_Parse(config_json);
  const cJSON* answer = cJSON_GetObjectItemCaseSensitive(config, "answer");
  int ok = cJSON_IsNumber(answer) && answer->valuedouble == 42;
  cJSON_Delete(config);
  if (ok) return HUT_OK;
  /* A timer started before failing must be ended by the space: firing it
   * after the library is closed would crash the test run. */
  host->timer_start(self, 1, 1, never, NULL, NULL);
  snprintf(err, errlen, "the answer is not 42");
  return HUT_EINVAL;
}

/* A test plugin with timers. At init: a one-shot timer after 5 ms sends
 * {"timer":"once"}; a repeating one every 2 ms sends {"tick":N} and stops
 * itself after the third tick; a third one is stopped before it can fire. */
#include <hutopia/plugin.h>
#include <stdio.h>
#include <stdlib.h>

static const hut_host* host;
static uint64_t ticker;
static int ticks;
static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR, .abi_minor = HUT_PLUGIN_ABI_MINOR, .name = "timer", .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static void once(hut_plugin* self, void* arg) {
  (void)arg;
  static const char msg[] = "{\"timer\":\"once\"}";
  host->send_widget_event(self, HUT_TARGET_EVERYONE, NULL, msg, sizeof msg - 1);
}

static void tick(hut_plugin* self, void* arg) {
  (void)arg;
  char msg[32];
  int n = snprintf(msg, sizeof msg, "{\"tick\":%d}", ++ticks);
  host->send_widget_event(self, HUT_TARGET_EVERYONE, NULL, msg, (size_t)n);
  if (ticks == 3) host->timer_stop(self, ticker);
}

static void never(hut_plugin* self, void* arg) {
  (void)self;
  (void)arg;
  abort();
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  host = h;
  ticks = 0;
  uint64_t stopped = 0;
  int rc = host->timer_start(self, 5, 0, once, NULL, NULL);
  if (rc == HUT_OK) rc = host->timer_start(self, 2, 2, tick, NULL, &ticker);
  if (rc == HUT_OK) rc = host->timer_start(self, 1, 0, never, NULL, &stopped);
  if (rc == HUT_OK) rc = host->timer_stop(self, stopped);
  if (rc == HUT_OK && host->timer_stop(self, stopped) != HUT_ENOENT) rc = HUT_EINTERNAL;
  if (rc != HUT_OK) snprintf(err, errlen, "timers: %s", host->strerror(rc));
  return rc;
}

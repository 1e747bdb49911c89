/* A test plugin with a thread of its own: a widget request starts a thread,
 * which posts the answer back to the loop with host->post. */
#include <hutopia/plugin.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static const hut_host* host;
static hut_plugin* plugin;
static pthread_t worker;
static int running;
static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR, .abi_minor = HUT_PLUGIN_ABI_MINOR, .name = "threaded", .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static void answer(hut_plugin* self, void* arg) {
  static const char data[] = "{\"posted\":true}";
  host->reply(self, (uint64_t)(uintptr_t)arg, data, sizeof data - 1);
}

static void* work(void* arg) {
  host->post(plugin, answer, arg);
  return NULL;
}

static void join_worker(void) {
  if (running) pthread_join(worker, NULL);
  running = 0;
}

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)self;
  (void)user_data;
  join_worker();
  if (pthread_create(&worker, NULL, work, (void*)(uintptr_t)req->request_id) != 0) return HUT_EUNAVAIL;
  running = 1;
  return HUT_OK;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  host = h;
  plugin = self;
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {
  (void)self;
  join_worker();
}

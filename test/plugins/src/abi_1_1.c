/* A plugin built against the frozen ABI 1.1 header (test/plugins/abi_1_1),
 * as a plugin compiled years ago would be. A widget op
 *   {"put":"<text>"}  stores the text in the key-value store, reads it back
 *                     and answers from a one-shot timer:
 *                     {"abi":"1.1","kv":"<text>","rooms":true|false}
 * where rooms says whether the host has room_post (HUT_HOST_HAS). */
#include <hutopia/plugin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if HUT_PLUGIN_ABI_MINOR != 1
#error "abi_1_1.c must be built against the frozen 1.1 header"
#endif

static const hut_host* host;
static const hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                                 .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                                 .name = "abi_1_1",
                                                 .version = "1.1.0"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

typedef struct answer {
  uint64_t request_id;
  char text[200];
} answer;

static void answer_now(hut_plugin* self, void* arg) {
  answer* a = (answer*)arg;
  char data[300];
  int n = snprintf(data, sizeof data, "{\"abi\":\"1.1\",\"kv\":\"%s\",\"rooms\":%s}", a->text,
                   HUT_HOST_HAS(host, room_post) ? "true" : "false");
  host->reply(self, a->request_id, data, (size_t)n);
  free(a);
}

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  const char* put = strstr(req->data_json, "\"put\":\"");
  if (put == NULL) return HUT_EINVAL;
  put += 7;
  const char* end = strchr(put, '"');
  if (end == NULL || end - put >= 199) return HUT_EINVAL;
  int rc = host->kv_put(self, "text", put, (size_t)(end - put));
  if (rc != HUT_OK) return rc;
  answer* a = (answer*)calloc(1, sizeof *a);
  if (a == NULL) return HUT_ENOMEM;
  a->request_id = req->request_id;
  size_t len = 0;
  rc = host->kv_get(self, "text", a->text, sizeof a->text - 1, &len);
  if (rc == HUT_OK) rc = host->timer_start(self, 1, 0, answer_now, a, NULL);
  if (rc != HUT_OK) free(a);
  return rc;
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

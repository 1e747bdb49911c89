/* A test plugin that answers badly or not at all, to check that the space
 * still answers every request:
 *   widget "never"      no answer, ever
 *   widget "nonjson"    answers "not json {" (refused: the request stays
 *                       pending), then answers {"first":<that call's result>}
 *   widget "twice"      answers {"n":1}, then {"n":2}: the second call fails
 *   widget anything     echoes the data
 *   GET /never          no answer, ever
 *   GET /ok             200 "ok" */
#include <hutopia/plugin.h>
#include <stdio.h>
#include <string.h>

static const hut_host* host;
static const hut_plugin_descriptor descriptor = {.abi_major = HUT_PLUGIN_ABI_MAJOR,
                                                 .abi_minor = HUT_PLUGIN_ABI_MINOR,
                                                 .name = "misbehave",
                                                 .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  char out[128];
  if (strcmp(req->data_json, "\"never\"") == 0) return HUT_OK;
  if (strcmp(req->data_json, "\"nonjson\"") == 0) {
    int first = host->reply(self, req->request_id, "not json {", 10);
    int n = snprintf(out, sizeof out, "{\"first\":%d}", first);
    return host->reply(self, req->request_id, out, (size_t)n);
  }
  if (strcmp(req->data_json, "\"twice\"") == 0) {
    int first = host->reply(self, req->request_id, "{\"n\":1}", 7);
    int second = host->reply(self, req->request_id, "{\"n\":2}", 7);
    if (first == HUT_OK && second == HUT_ENOENT) return HUT_OK;
    return HUT_EIO;
  }
  return host->reply(self, req->request_id, req->data_json, req->data_len);
}

static int on_http(hut_plugin* self, void* user_data, const hut_http_request* req) {
  (void)user_data;
  if (strcmp(req->path, "/never") == 0) return HUT_OK;
  if (strcmp(req->path, "/ok") == 0) {
    hut_header headers[] = {{"content-type", "text/plain"}};
    return host->http_respond(self, req->request_id, 200, headers, 1, "ok", 2);
  }
  return HUT_ENOENT;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  host = h;
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  hooks.on_http = on_http;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

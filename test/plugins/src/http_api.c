/* A test plugin with an HTTP handler:
 *   GET  /hello?x   200 "hello x" with x-test: yes
 *   POST /echo      200 with the request's body and content-type
 *   GET  /later     200 "late", answered from a timer 5 ms later
 *   GET  /refuse    the hook returns HUT_EPERM without answering
 *   else            the hook returns HUT_ENOENT */
#include <hutopia/plugin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const hut_host* host;
static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR, .abi_minor = HUT_PLUGIN_ABI_MINOR, .name = "http_api", .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static void answer_later(hut_plugin* self, void* arg) {
  uint64_t id = (uint64_t)(uintptr_t)arg;
  host->http_respond(self, id, 200, NULL, 0, "late", 4);
}

static int on_http(hut_plugin* self, void* user_data, const hut_http_request* req) {
  (void)user_data;
  if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/hello") == 0) {
    char body[256];
    int n = snprintf(body, sizeof body, "hello %s", req->query);
    hut_header headers[] = {{"content-type", "text/plain"}, {"x-test", "yes"}};
    return host->http_respond(self, req->request_id, 200, headers, 2, body, (size_t)n);
  }
  if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/echo") == 0) {
    const char* type = "application/octet-stream";
    for (size_t i = 0; i < req->header_count; ++i) {
      if (strcmp(req->headers[i].name, "content-type") == 0) type = req->headers[i].value;
    }
    hut_header headers[] = {{"content-type", type}};
    return host->http_respond(self, req->request_id, 200, headers, 1, req->body, req->body_len);
  }
  if (strcmp(req->path, "/later") == 0)
    return host->timer_start(self, 5, 0, answer_later, (void*)(uintptr_t)req->request_id, NULL);
  if (strcmp(req->path, "/refuse") == 0) return HUT_EPERM;
  return HUT_ENOENT;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  host = h;
  hut_hooks hooks = {0};
  hooks.on_http = on_http;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

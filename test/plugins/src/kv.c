/* A test plugin over the key-value store. Widget requests:
 *   {"op":"put","key":K,"value":V}  stores the string V
 *   {"op":"get","key":K}            answers {"value":V}, or not_found
 *   {"op":"del","key":K}            answers {"deleted":true|false}
 *   {"op":"big"}                    stores and reads back 100000 bytes through
 *                                   a small buffer first (HUT_ERANGE), answers {"ok":true}
 *   {"op":"many","n":N}             stores "<i>" under "m<i>" for i < N, each read
 *                                   back at once; answers {"ok":true} when all were
 * and HTTP requests on /api/kv/<key>:
 *   GET     the value (200), or 404
 *   PUT     stores the body (200 "stored")
 *   DELETE  removes the key (200 "deleted"), or 404 */
#include <cJSON.h>
#include <hutopia/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const hut_host* host;
static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR, .abi_minor = HUT_PLUGIN_ABI_MINOR, .name = "kv", .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static int reply_json(hut_plugin* self, uint64_t id, cJSON* json) {
  char* text = cJSON_PrintUnformatted(json);
  int rc = host->reply(self, id, text, strlen(text));
  cJSON_free(text);
  return rc;
}

static int big(hut_plugin* self, uint64_t id) {
  enum { N = 100000 };
  char* value = malloc(N);
  char* back = malloc(N);
  char small[16];
  size_t len = 0;
  for (size_t i = 0; i < N; ++i) value[i] = (char)(i % 251);
  int ok = host->kv_put(self, "big", value, N) == HUT_OK &&
           host->kv_get(self, "big", small, sizeof small, &len) == HUT_ERANGE && len == N &&
           host->kv_get(self, "big", back, N, &len) == HUT_OK && len == N && memcmp(value, back, N) == 0;
  free(value);
  free(back);
  cJSON* out = cJSON_CreateObject();
  cJSON_AddBoolToObject(out, "ok", ok);
  int rc = reply_json(self, id, out);
  cJSON_Delete(out);
  return rc;
}

static int many(hut_plugin* self, uint64_t id, int n) {
  int ok = 1;
  for (int i = 0; i < n && ok; ++i) {
    char key[32], value[32], back[32];
    size_t len = 0;
    snprintf(key, sizeof key, "m%d", i);
    int vlen = snprintf(value, sizeof value, "%d", i);
    ok = host->kv_put(self, key, value, (size_t)vlen) == HUT_OK &&
         host->kv_get(self, key, back, sizeof back, &len) == HUT_OK && len == (size_t)vlen &&
         memcmp(back, value, len) == 0;
  }
  cJSON* out = cJSON_CreateObject();
  cJSON_AddBoolToObject(out, "ok", ok);
  int rc = reply_json(self, id, out);
  cJSON_Delete(out);
  return rc;
}

static int on_http(hut_plugin* self, void* user_data, const hut_http_request* req) {
  (void)user_data;
  const char* key = req->path + 1; /* the path starts with "/" */
  if (strcmp(req->method, "GET") == 0) {
    size_t len = 0;
    int rc = host->kv_get(self, key, NULL, 0, &len);
    if (rc != HUT_ERANGE && rc != HUT_OK) return rc;
    char* buf = malloc(len + 1);
    rc = host->kv_get(self, key, buf, len + 1, &len);
    if (rc == HUT_OK) rc = host->http_respond(self, req->request_id, 200, NULL, 0, buf, len);
    free(buf);
    return rc;
  }
  if (strcmp(req->method, "PUT") == 0) {
    int rc = host->kv_put(self, key, req->body, req->body_len);
    return rc == HUT_OK ? host->http_respond(self, req->request_id, 200, NULL, 0, "stored", 6) : rc;
  }
  if (strcmp(req->method, "DELETE") == 0) {
    int rc = host->kv_delete(self, key);
    return rc == HUT_OK ? host->http_respond(self, req->request_id, 200, NULL, 0, "deleted", 7) : rc;
  }
  return HUT_EINVAL;
}

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  cJSON* data = cJSON_ParseWithLength(req->data_json, req->data_len);
  const char* op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "op"));
  const char* key = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "key"));
  const char* value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "value"));
  int rc = HUT_EINVAL;
  cJSON* out = cJSON_CreateObject();
  if (op && strcmp(op, "big") == 0) {
    rc = big(self, req->request_id);
  } else if (op && strcmp(op, "many") == 0) {
    const cJSON* n = cJSON_GetObjectItemCaseSensitive(data, "n");
    if (cJSON_IsNumber(n) && n->valueint >= 0) rc = many(self, req->request_id, n->valueint);
  } else if (op && key && strcmp(op, "put") == 0 && value) {
    rc = host->kv_put(self, key, value, strlen(value));
    if (rc == HUT_OK) rc = reply_json(self, req->request_id, out);
  } else if (op && key && strcmp(op, "get") == 0) {
    char buf[4096];
    size_t len = 0;
    rc = host->kv_get(self, key, buf, sizeof buf - 1, &len);
    if (rc == HUT_OK) {
      buf[len] = '\0';
      cJSON_AddStringToObject(out, "value", buf);
      rc = reply_json(self, req->request_id, out);
    }
  } else if (op && key && strcmp(op, "del") == 0) {
    rc = host->kv_delete(self, key);
    if (rc == HUT_OK || rc == HUT_ENOENT) {
      cJSON_AddBoolToObject(out, "deleted", rc == HUT_OK);
      rc = reply_json(self, req->request_id, out);
    }
  }
  cJSON_Delete(out);
  cJSON_Delete(data);
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
  hooks.on_http = on_http;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

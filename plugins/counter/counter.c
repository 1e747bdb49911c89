/* counter: one number shared by the whole space.
 *
 * Bus: {"op":"get"} answers {"value":N}; {"op":"increment","by"?:k} (k an
 * integer, default 1) counts up, answers {"value":N} and sends the same
 * {"value":N} to every session as a widget event. HTTP: GET /api/counter/value
 * answers {"value":N}. The value is kept in the plugin's key-value store, so it
 * survives restarts and reloads. Configuration (counter.toml): `start`, the
 * value when the store holds none (default 0).
 *
 * Its widget, <hut-counter>, is dist/widget.js, embedded in the library. */
#include <cJSON.h>
#include <hutopia/plugin.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Made by scripts/embed_assets.py from dist/. */
extern const size_t counter_assets_count;
extern const char* const counter_assets_paths[];
extern const char* const counter_assets_types[];
extern const unsigned char* const counter_assets_data[];
extern const size_t counter_assets_sizes[];

static const hut_widget_desc widgets[] = {{"hut-counter", "widget.js"}};

static hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR,
    .abi_minor = HUT_PLUGIN_ABI_MINOR,
    .name = "counter",
    .version = "1.0.0",
    .widgets = widgets,
    .widget_count = 1,
};

static const hut_host* host;
static int64_t value;

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) {
  /* The asset count is a variable of the generated file, not a constant
   * expression, so the descriptor takes the arrays here; doing it again
   * changes nothing. */
  descriptor.asset_count = counter_assets_count;
  descriptor.asset_paths = counter_assets_paths;
  descriptor.asset_types = counter_assets_types;
  descriptor.asset_data = counter_assets_data;
  descriptor.asset_sizes = counter_assets_sizes;
  return &descriptor;
}

static int value_json(char* buf, size_t len) { return snprintf(buf, len, "{\"value\":%" PRId64 "}", value); }

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  cJSON* data = cJSON_ParseWithLength(req->data_json, req->data_len);
  const cJSON* op = cJSON_GetObjectItemCaseSensitive(data, "op");
  int rc = HUT_EINVAL;
  char out[64];
  if (cJSON_IsString(op) && strcmp(op->valuestring, "get") == 0) {
    int n = value_json(out, sizeof out);
    rc = host->reply(self, req->request_id, out, (size_t)n);
  } else if (cJSON_IsString(op) && strcmp(op->valuestring, "increment") == 0) {
    const cJSON* by = cJSON_GetObjectItemCaseSensitive(data, "by");
    int64_t step = 1;
    if (cJSON_IsNumber(by) && by->valuedouble >= -1e6 && by->valuedouble <= 1e6 &&
        by->valuedouble == (double)(int64_t)by->valuedouble) {
      step = (int64_t)by->valuedouble;
    } else if (by != NULL) {
      cJSON_Delete(data);
      return host->reply_error(self, req->request_id, "bad_request", "`by` must be an integer within 1e6");
    }
    char stored[32];
    int len = snprintf(stored, sizeof stored, "%" PRId64, value + step);
    rc = host->kv_put(self, "value", stored, (size_t)len);
    if (rc == HUT_OK) {
      value += step;
      int n = value_json(out, sizeof out);
      rc = host->reply(self, req->request_id, out, (size_t)n);
      host->send_widget_event(self, HUT_TARGET_EVERYONE, NULL, out, (size_t)n);
    }
  } else {
    rc = host->reply_error(self, req->request_id, "bad_request", "op must be \"get\" or \"increment\"");
  }
  cJSON_Delete(data);
  return rc;
}

static int on_http(hut_plugin* self, void* user_data, const hut_http_request* req) {
  (void)user_data;
  static const hut_header json[] = {{"content-type", "application/json"}};
  if (strcmp(req->path, "/value") != 0) return HUT_ENOENT;
  if (strcmp(req->method, "GET") != 0) {
    static const char body[] = "{\"error\":{\"code\":\"bad_request\",\"message\":\"use GET\"}}";
    static const hut_header allow[] = {{"content-type", "application/json"}, {"allow", "GET"}};
    return host->http_respond(self, req->request_id, 405, allow, 2, body, sizeof body - 1);
  }
  char out[64];
  int n = value_json(out, sizeof out);
  return host->http_respond(self, req->request_id, 200, json, 1, out, (size_t)n);
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  host = h;
  value = 0;
  cJSON* config = cJSON_Parse(config_json);
  const cJSON* start = cJSON_GetObjectItemCaseSensitive(config, "start");
  if (start != NULL && !cJSON_IsNumber(start)) {
    snprintf(err, errlen, "counter.toml: `start` must be an integer");
    cJSON_Delete(config);
    return HUT_EINVAL;
  }
  if (start != NULL) value = (int64_t)start->valuedouble;
  cJSON_Delete(config);

  char stored[32];
  size_t len = 0;
  int rc = host->kv_get(self, "value", stored, sizeof stored, &len);
  if (rc == HUT_OK) {
    if (sscanf(stored, "%" SCNd64, &value) != 1) {
      snprintf(err, errlen, "the stored value \"%s\" is not a number", stored);
      return HUT_EIO;
    }
  } else if (rc != HUT_ENOENT) {
    snprintf(err, errlen, "cannot read the stored value: %s", host->strerror(rc));
    return rc;
  }
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  hooks.on_http = on_http;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

/* A plugin of ABI 1.5, built twice: "abi15" and, with -DREQUIRES_OLD,
 * "requires_1_1", which declares it runs on spaces from 1.1 and so calls
 * every newer function only after HUT_HOST_HAS.
 *
 * Its state is its instance data (set_instance_data). It sends
 * {"released":"<what>"} to everyone from each release callback, so that a
 * test sees every arg the space lets go of. Widget ops (the op's data):
 *   {"op":"count"}  {"count":N}, N counted in the instance data
 *   {"op":"fail"}   reply_error_code(HUT_EPERM, NULL)
 *   {"op":"post"}   answers {"posted":true} from a post_ex callback
 *   {"op":"room"}   room_post_ex to "lobby"; answers {"room_rc":rc}; the done
 *                   sends {"room_done":status}
 *   {"op":"stop"}   starts a repeating timer_start_ex and stops it; {"stopped":rc}
 * init starts a one-shot timer (sends {"fired":"once"}) and a repeating one
 * that only ends with the plugin, both with releases.
 * HTTP: the query's pairs, one "name=value" a line (ABI 1.5 hosts), or
 * "no pairs" on an older host. */
#include <hutopia/plugin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PLUGIN_NAME
#define PLUGIN_NAME "abi15"
#endif

static const hut_host* host;
static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR,
    .abi_minor = HUT_PLUGIN_ABI_MINOR,
    .name = PLUGIN_NAME,
    .version = "1.5.0",
#ifdef REQUIRES_OLD
    .requires_abi = HUT_PLUGIN_ABI(1, 1),
#endif
};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

typedef struct state {
  int count;
} state;

static void say(hut_plugin* self, const char* json) {
  host->send_widget_event(self, HUT_TARGET_EVERYONE, NULL, json, strlen(json));
}

/* The args are string literals naming what they are for. */
static void released(hut_plugin* self, void* arg) {
  char json[100];
  snprintf(json, sizeof json, "{\"released\":\"%s\"}", (const char*)arg);
  say(self, json);
}

static void fired(hut_plugin* self, void* arg) {
  (void)arg;
  say(self, "{\"fired\":\"once\"}");
}

static void tick(hut_plugin* self, void* arg) {
  (void)self;
  (void)arg;
}

typedef struct post_arg {
  uint64_t request_id;
} post_arg;

static void posted(hut_plugin* self, void* arg) {
  host->reply(self, ((post_arg*)arg)->request_id, "{\"posted\":true}", 15);
}

static void post_released(hut_plugin* self, void* arg) {
  free(arg);
  say(self, "{\"released\":\"post\"}");
}

static void room_done(hut_plugin* self, void* arg, int status, const char* json, size_t json_len) {
  (void)arg;
  (void)json;
  (void)json_len;
  char out[64];
  snprintf(out, sizeof out, "{\"room_done\":%d}", status);
  say(self, out);
}

static int reply_int(hut_plugin* self, uint64_t id, const char* key, long long value) {
  char data[80];
  int n = snprintf(data, sizeof data, "{\"%s\":%lld}", key, value);
  return host->reply(self, id, data, (size_t)n);
}

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  if (!HUT_HOST_HAS(host, room_history_ex)) return HUT_ENOTSUP;
  const char* d = req->data_json;
  if (strstr(d, "\"count\"")) {
    state* st = (state*)host->instance_data(self);
    if (st == NULL) return HUT_EINTERNAL;
    return reply_int(self, req->request_id, "count", ++st->count);
  }
  if (strstr(d, "\"fail\"")) return host->reply_error_code(self, req->request_id, HUT_EPERM, NULL);
  if (strstr(d, "\"post\"")) {
    post_arg* a = (post_arg*)malloc(sizeof *a);
    if (a == NULL) return HUT_ENOMEM;
    a->request_id = req->request_id;
    int rc = host->post_ex(self, posted, a, post_released);
    if (rc != HUT_OK) free(a);
    return rc;
  }
  if (strstr(d, "\"room\"")) {
    int rc = host->room_post_ex(self, "lobby", "hi", NULL, room_done, "room", released);
    return reply_int(self, req->request_id, "room_rc", rc);
  }
  if (strstr(d, "\"stop\"")) {
    uint64_t id = 0;
    int rc = host->timer_start_ex(self, 100000, 100000, tick, "stopped", released, &id);
    if (rc == HUT_OK) rc = host->timer_stop(self, id);
    return reply_int(self, req->request_id, "stopped", rc);
  }
  return HUT_EINVAL;
}

static int on_http(hut_plugin* self, void* user_data, const hut_http_request* req) {
  (void)user_data;
  char body[2048];
  size_t len = 0;
  if (!HUT_HOST_AT_LEAST(host, 5)) {
    len = (size_t)snprintf(body, sizeof body, "no pairs");
  } else {
    for (size_t i = 0; i < req->query_param_count && len < sizeof body; ++i) {
      len += (size_t)snprintf(body + len, sizeof body - len, "%s=%s\n", req->query_params[i].name,
                              req->query_params[i].value);
    }
    if (len > sizeof body) len = sizeof body;
  }
  hut_header headers[] = {{"content-type", "text/plain"}};
  return host->http_respond(self, req->request_id, 200, headers, 1, body, len);
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  host = h;
  /* On a space older than 1.5 the plugin loads without its 1.5 parts: its
   * widget ops answer not supported. */
  if (HUT_HOST_HAS(h, room_history_ex)) {
    state* st = (state*)calloc(1, sizeof *st);
    if (st == NULL) return HUT_ENOMEM;
    h->set_instance_data(self, st);
    h->timer_start_ex(self, 1, 0, fired, "once", released, NULL);
    h->timer_start_ex(self, 100000, 100000, tick, "repeat", released, NULL);
  }
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  hooks.on_http = on_http;
  return h->register_hooks(self, &hooks, sizeof hooks);
}

HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {
  if (HUT_HOST_HAS(host, instance_data)) free(host->instance_data(self));
}

/* A test plugin for the host functions that reach clients. Widget requests
 * (by the text of `data`):
 *   "notify"    notifies the requesting user, with and without body and url
 *   "targets"   sends a widget event to the session, the user, room "lobby"
 *               and everyone; a bad target and a missing id are refused
 *   "twice"     answers, then checks that a second answer is refused
 *   "teapot"    answers with its own error code
 *   "mint"      mints a token for the requesting session (ABI 1.4) and
 *               answers {"token":...}, after checking that an unknown
 *               session, a too long lifetime and a small buffer are refused
 *   "closed"    answers {"closed":<the last session id on_session_closed saw>}
 * Each other answers {"ok":true} when every host call returned what it should. */
#include <hutopia/plugin.h>
#include <stdio.h>
#include <string.h>

static const hut_host* host;
static const hut_plugin_descriptor descriptor = {
    .abi_major = HUT_PLUGIN_ABI_MAJOR, .abi_minor = HUT_PLUGIN_ABI_MINOR, .name = "events", .version = "1"};

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return &descriptor; }

static int done(hut_plugin* self, uint64_t id, int ok) {
  return ok ? host->reply(self, id, "{\"ok\":true}", 11)
            : host->reply_error(self, id, "internal", "a host call failed");
}

/* Session ids are short printable tokens; a longer one is cut. */
static char last_closed[128];

static void on_session_closed(hut_plugin* self, void* user_data, const char* session_id,
                              const hut_user* user) {
  (void)self;
  (void)user_data;
  (void)user;
  snprintf(last_closed, sizeof last_closed, "%s", session_id);
}

static int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  (void)user_data;
  const char* d = req->data_json;
  if (strcmp(d, "\"notify\"") == 0) {
    int ok = host->notify(self, req->user->id, "Title", "Body", "https://example.test/x") == HUT_OK &&
             host->notify(self, req->user->id, "Bare", NULL, NULL) == HUT_OK &&
             host->notify(self, NULL, "No user", NULL, NULL) == HUT_EINVAL;
    return done(self, req->request_id, ok);
  }
  if (strcmp(d, "\"targets\"") == 0) {
    int ok = host->send_widget_event(self, HUT_TARGET_SESSION, req->session_id, "1", 1) == HUT_OK &&
             host->send_widget_event(self, HUT_TARGET_USER, req->user->id, "2", 1) == HUT_OK &&
             host->send_widget_event(self, HUT_TARGET_ROOM, "lobby", "3", 1) == HUT_OK &&
             host->send_widget_event(self, HUT_TARGET_EVERYONE, NULL, "4", 1) == HUT_OK &&
             host->send_widget_event(self, (hut_target)99, "x", "5", 1) == HUT_EINVAL &&
             host->send_widget_event(self, HUT_TARGET_SESSION, NULL, "6", 1) == HUT_EINVAL;
    return done(self, req->request_id, ok);
  }
  if (strcmp(d, "\"twice\"") == 0) {
    int rc = done(self, req->request_id, 1);
    if (rc != HUT_OK) return rc;
    if (host->reply(self, req->request_id, "{}", 2) != HUT_ENOENT) return HUT_EINTERNAL;
    return host->reply_error(self, req->request_id, "conflict", "again") == HUT_ENOENT ? HUT_OK
                                                                                       : HUT_EINTERNAL;
  }
  if (strcmp(d, "\"mint\"") == 0) {
    char buf[4096];
    size_t len = 0;
    if (!HUT_HOST_HAS(host, mint_session_token)) return HUT_ENOTSUP;
    int ok = host->mint_session_token(self, "no-such-session", 0, buf, sizeof buf, &len) == HUT_ENOENT &&
             host->mint_session_token(self, req->session_id, 301, buf, sizeof buf, &len) == HUT_EINVAL &&
             host->mint_session_token(self, NULL, 0, buf, sizeof buf, &len) == HUT_EINVAL &&
             host->mint_session_token(self, req->session_id, 0, buf, 8, &len) == HUT_ERANGE && len > 8;
    int rc = host->mint_session_token(self, req->session_id, 30, buf, sizeof buf, &len);
    if (!ok || rc != HUT_OK || len >= sizeof buf - 16) return done(self, req->request_id, 0);
    char answer[4200];
    int n = snprintf(answer, sizeof answer, "{\"token\":\"%s\"}", buf);
    return host->reply(self, req->request_id, answer, (size_t)n);
  }
  if (strcmp(d, "\"closed\"") == 0) {
    char answer[200];
    int n = snprintf(answer, sizeof answer, "{\"closed\":\"%s\"}", last_closed);
    return host->reply(self, req->request_id, answer, (size_t)n);
  }
  if (strcmp(d, "\"teapot\"") == 0)
    return host->reply_error(self, req->request_id, "conflict", "I am a teapot");
  host->log(self, HUT_LOG_INFO, "unknown request");
  return HUT_EINVAL;
}

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* h, hut_plugin* self, const char* config_json, char* err,
                                      size_t errlen) {
  (void)config_json;
  (void)err;
  (void)errlen;
  host = h;
  if (h->abi_version != HUT_PLUGIN_ABI_VERSION || !HUT_HOST_HAS(h, post)) return HUT_ENOTSUP;
  hut_hooks hooks = {0};
  hooks.on_widget = on_widget;
  hooks.on_session_closed = on_session_closed;
  if (host->register_hooks(self, &hooks, offsetof(hut_hooks, on_post)) != HUT_EINVAL) return HUT_EINTERNAL;
  return host->register_hooks(self, &hooks, sizeof hooks);
}

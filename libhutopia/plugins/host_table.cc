// The host table handed to every plugin, and the host functions that pass
// a plugin's call on to the space (PluginServices) or keep per-instance
// state (hooks, assets, body routes, data dir). The key-value functions are
// in kv_overlay.cc, the timer and post functions in timers_posts.cc.

#include "plugins/runtime_impl.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "util/json.h"
#include "util/log.h"
#include "util/wire_error.h"

namespace hut {

namespace {

// The size of ABI 1.0's hut_hooks, whose last field is on_post; it stays the
// minimum when later minors add fields.
constexpr size_t kMinHooksSize = offsetof(hut_hooks, on_post) + sizeof(hut_hooks::on_post);

const hut_host kHost = {
    HUT_PLUGIN_ABI_VERSION,
    sizeof(hut_host),
    &RuntimeImpl::host_log,
    &RuntimeImpl::host_strerror,
    &RuntimeImpl::host_reply,
    &RuntimeImpl::host_reply_error,
    &RuntimeImpl::host_send_widget_event,
    &RuntimeImpl::host_notify,
    &RuntimeImpl::host_kv_get,
    &RuntimeImpl::host_kv_put,
    &RuntimeImpl::host_kv_delete,
    &RuntimeImpl::host_register_hooks,
    &RuntimeImpl::host_http_respond,
    &RuntimeImpl::host_register_asset,
    &RuntimeImpl::host_timer_start,
    &RuntimeImpl::host_timer_stop,
    &RuntimeImpl::host_post,
    &RuntimeImpl::host_room_post,
    &RuntimeImpl::host_room_history,
    &RuntimeImpl::host_room_members,
    &RuntimeImpl::host_data_dir,
    &RuntimeImpl::host_http_body_to_file,
    &RuntimeImpl::host_http_respond_file,
    &RuntimeImpl::host_mint_session_token,
    &RuntimeImpl::host_reply_error_code,
    &RuntimeImpl::host_set_instance_data,
    &RuntimeImpl::host_instance_data,
    &RuntimeImpl::host_timer_start_ex,
    &RuntimeImpl::host_post_ex,
    &RuntimeImpl::host_room_post_ex,
    &RuntimeImpl::host_room_history_ex,
};

}  // namespace

const hut_host* host_table() { return &kHost; }

void RuntimeImpl::host_log(hut_plugin* self, int level, const char* message) {
  if (self == nullptr || message == nullptr) return;
  LogLevel l = level <= HUT_LOG_DEBUG  ? LogLevel::kDebug
               : level == HUT_LOG_INFO ? LogLevel::kInfo
               : level == HUT_LOG_WARN ? LogLevel::kWarn
                                       : LogLevel::kError;
  log_write(l, self->component, message);
}

int RuntimeImpl::host_reply(hut_plugin* self, uint64_t id, const char* data, size_t len) {
  if (self == nullptr || data == nullptr) return HUT_EINVAL;
  PluginAnswer a;
  a.kind = PluginAnswer::Kind::kData;
  a.data_json = std::string_view(data, len);
  // HUT_ENOENT first (not pending), then HUT_EINVAL for data that is not
  // JSON: the request stays pending, and the plugin may answer again.
  return self->runtime->requests_.answer(self->name, id, a, is_json(a.data_json));
}

int RuntimeImpl::answer_error(hut_plugin* self, uint64_t id, std::string_view code,
                              std::string_view message) {
  PluginAnswer a;
  a.kind = PluginAnswer::Kind::kError;
  a.code = code;
  a.message = message;
  return self->runtime->requests_.answer(self->name, id, a);
}

int RuntimeImpl::answer_http(hut_plugin* self, uint64_t id, PluginHttpResponse& response) {
  PluginAnswer a;
  a.kind = PluginAnswer::Kind::kHttp;
  a.http = &response;
  return self->runtime->requests_.answer(self->name, id, a);
}

int RuntimeImpl::host_reply_error_code(hut_plugin* self, uint64_t id, int code, const char* message) {
  if (self == nullptr || code >= 0) return HUT_EINVAL;
  return answer_error(self, id, wire_error_name(wire_error_of_plugin(code)),
                      message != nullptr ? message : hut_strerror(code));
}

int RuntimeImpl::host_set_instance_data(hut_plugin* self, void* data) {
  if (self == nullptr) return HUT_EINVAL;
  self->instance_data = data;
  return HUT_OK;
}

void* RuntimeImpl::host_instance_data(hut_plugin* self) {
  return self != nullptr ? self->instance_data : nullptr;
}

int RuntimeImpl::host_reply_error(hut_plugin* self, uint64_t id, const char* code, const char* message) {
  if (self == nullptr || code == nullptr || *code == '\0') return HUT_EINVAL;
  return answer_error(self, id, code, message ? message : "");
}

int RuntimeImpl::host_send_widget_event(hut_plugin* self, hut_target target, const char* target_id,
                                        const char* data, size_t len) {
  if (self == nullptr || data == nullptr) return HUT_EINVAL;
  // hut_target's values, in order.
  static constexpr EventTarget kTargets[] = {EventTarget::kSession, EventTarget::kUser, EventTarget::kRoom,
                                             EventTarget::kEveryone};
  static_assert(HUT_TARGET_SESSION == 0 && HUT_TARGET_USER == 1 && HUT_TARGET_ROOM == 2 &&
                HUT_TARGET_EVERYONE == 3);
  auto index = static_cast<size_t>(target);
  if (index >= std::size(kTargets)) return HUT_EINVAL;
  EventTarget t = kTargets[index];
  if (t != EventTarget::kEveryone && (target_id == nullptr || *target_id == '\0')) return HUT_EINVAL;
  return self->runtime->services_->send_widget_event(self->name, t, target_id ? target_id : "",
                                                     std::string_view(data, len));
}

PluginServices::RoomDone RuntimeImpl::room_done(hut_plugin* self, hut_room_done done, void* arg,
                                                hut_callback release, uint64_t* call_id) {
  *call_id = 0;
  if (done == nullptr && release == nullptr) return nullptr;
  uint64_t id = self->next_room_call++;
  self->room_calls.emplace(id, hut_plugin::RoomCall{done, arg, release});
  *call_id = id;
  std::string name = self->name;
  uint64_t serial = self->serial;
  return [this, name, serial, id](int status, std::string json) {
    hut_plugin* inst = loaded(name);
    if (inst == nullptr || inst->serial != serial) return;
    auto it = inst->room_calls.find(id);
    if (it == inst->room_calls.end()) return;
    hut_plugin::RoomCall call = it->second;
    inst->room_calls.erase(it);
    if (call.done != nullptr) {
      measured(inst, [&] {
        call.done(inst, call.arg, status, json.c_str(), json.size());
        return 0;
      });
    }
    if (call.release != nullptr) call.release(inst, call.arg);
  };
}

void RuntimeImpl::release_room_calls(hut_plugin* inst) {
  std::map<uint64_t, hut_plugin::RoomCall> calls;
  calls.swap(inst->room_calls);
  for (auto& [id, call] : calls)
    if (call.release != nullptr) call.release(inst, call.arg);
}

int RuntimeImpl::host_room_post(hut_plugin* self, const char* room, const char* text, const char* data_json,
                                hut_room_done done, void* arg) {
  return host_room_post_ex(self, room, text, data_json, done, arg, nullptr);
}

int RuntimeImpl::host_room_post_ex(hut_plugin* self, const char* room, const char* text,
                                   const char* data_json, hut_room_done done, void* arg,
                                   hut_callback release) {
  if (self == nullptr || room == nullptr || *room == '\0' || text == nullptr) return HUT_EINVAL;
  uint64_t call = 0;
  PluginServices::RoomDone wrapped = self->runtime->room_done(self, done, arg, release, &call);
  int rc = self->runtime->services_->room_post(self->name, room, text, data_json ? data_json : "",
                                               std::move(wrapped));
  if (rc != HUT_OK) forget_room_call(self, call);
  return rc;
}

int RuntimeImpl::host_room_history(hut_plugin* self, const char* room, uint64_t before, int limit,
                                   hut_room_done done, void* arg) {
  return host_room_history_ex(self, room, before, limit, done, arg, nullptr);
}

int RuntimeImpl::host_room_history_ex(hut_plugin* self, const char* room, uint64_t before, int limit,
                                      hut_room_done done, void* arg, hut_callback release) {
  if (self == nullptr || room == nullptr || *room == '\0' || limit < 1 || limit > 200) return HUT_EINVAL;
  uint64_t call = 0;
  PluginServices::RoomDone wrapped = self->runtime->room_done(self, done, arg, release, &call);
  int rc = self->runtime->services_->room_history(room, before, limit, std::move(wrapped));
  if (rc != HUT_OK) forget_room_call(self, call);
  return rc;
}

int RuntimeImpl::host_room_members(hut_plugin* self, const char* room, char* buf, size_t buflen,
                                   size_t* json_len) {
  if (self == nullptr || room == nullptr || (buf == nullptr && buflen > 0)) return HUT_EINVAL;
  std::string json;
  int rc = self->runtime->services_->room_members(room, &json);
  if (rc != HUT_OK) return rc;
  if (json_len != nullptr) *json_len = json.size();
  if (buflen < json.size()) return HUT_ERANGE;
  if (!json.empty()) std::memcpy(buf, json.data(), json.size());
  if (buflen > json.size()) buf[json.size()] = '\0';
  return HUT_OK;
}

int RuntimeImpl::host_notify(hut_plugin* self, const char* user_id, const char* title, const char* body,
                             const char* url) {
  if (self == nullptr || user_id == nullptr || *user_id == '\0' || title == nullptr) return HUT_EINVAL;
  return self->runtime->services_->notify(self->name, user_id, title, body ? body : "", url ? url : "");
}

const char* RuntimeImpl::host_data_dir(hut_plugin* self) {
  if (self == nullptr) return nullptr;
  if (!self->data_dir.empty()) return self->data_dir.c_str();
  const std::string& base = self->runtime->options_.data_dir;
  if (base.empty()) return nullptr;
  std::string dir = base + "/plugins/" + self->name;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    log_write(LogLevel::kError, self->component, "cannot create " + dir + ": " + ec.message());
    return nullptr;
  }
  self->data_dir = std::move(dir);
  return self->data_dir.c_str();
}

int RuntimeImpl::host_register_hooks(hut_plugin* self, const hut_hooks* hooks, size_t hooks_size) {
  // ABI 1.0 defines every field the struct has today; later minors accept the
  // 1.0 size as the minimum and zero what an older plugin does not know.
  if (self == nullptr || hooks == nullptr || hooks_size < kMinHooksSize) return HUT_EINVAL;
  hut_hooks copy{};
  std::memcpy(&copy, hooks, std::min(hooks_size, sizeof(hut_hooks)));
  self->hooks = copy;
  return HUT_OK;
}

int RuntimeImpl::host_http_respond(hut_plugin* self, uint64_t id, int status, const hut_header* headers,
                                   size_t header_count, const char* body, size_t body_len) {
  if (self == nullptr || status < 100 || status > 599 || (headers == nullptr && header_count > 0) ||
      (body == nullptr && body_len > 0))
    return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  PluginHttpResponse resp;
  resp.status = status;
  for (size_t i = 0; i < header_count; ++i) {
    if (headers[i].name == nullptr || headers[i].value == nullptr) return HUT_EINVAL;
    resp.headers.emplace_back(headers[i].name, headers[i].value);
  }
  if (body_len > 0) resp.body.assign(body, body_len);
  return rt->answer_http(self, id, resp);
}

int RuntimeImpl::host_http_respond_file(hut_plugin* self, uint64_t id, int status, const hut_header* headers,
                                        size_t header_count, const char* path) {
  if (self == nullptr || path == nullptr || path[0] != '/' || status < 100 || status > 599 ||
      (headers == nullptr && header_count > 0))
    return HUT_EINVAL;
  PluginHttpResponse resp;
  resp.status = status;
  for (size_t i = 0; i < header_count; ++i) {
    if (headers[i].name == nullptr || headers[i].value == nullptr) return HUT_EINVAL;
    resp.headers.emplace_back(headers[i].name, headers[i].value);
  }
  resp.body_path = path;
  return self->runtime->answer_http(self, id, resp);
}

int RuntimeImpl::host_mint_session_token(hut_plugin* self, const char* session_id, uint32_t ttl_s, char* buf,
                                         size_t buflen, size_t* token_len) {
  if (self == nullptr || session_id == nullptr || session_id[0] == '\0' || token_len == nullptr ||
      (buf == nullptr && buflen > 0) || ttl_s > 300)
    return HUT_EINVAL;
  std::string token;
  int rc = self->runtime->services_->mint_session_token(session_id, ttl_s == 0 ? 60 : ttl_s, &token);
  if (rc != HUT_OK) return rc;
  *token_len = token.size();
  if (buflen < token.size()) return HUT_ERANGE;
  std::memcpy(buf, token.data(), token.size());
  if (buflen > token.size()) buf[token.size()] = '\0';
  return HUT_OK;
}

int RuntimeImpl::host_http_body_to_file(hut_plugin* self, const char* method, const char* path,
                                        uint64_t max_bytes) {
  if (self == nullptr || method == nullptr || path == nullptr || path[0] != '/' || max_bytes == 0 ||
      std::strcmp(method, "GET") == 0 || std::strcmp(method, "HEAD") == 0 || method[0] == '\0')
    return HUT_EINVAL;
  if (host_data_dir(self) == nullptr) return HUT_EUNAVAIL;
  for (auto& r : self->body_routes) {
    if (r.method == method && r.path == path) {
      r.max_bytes = max_bytes;
      return HUT_OK;
    }
  }
  self->body_routes.push_back({method, path, max_bytes});
  return HUT_OK;
}

int RuntimeImpl::host_register_asset(hut_plugin* self, const char* path, const char* content_type,
                                     const void* data, size_t size) {
  if (self == nullptr || path == nullptr || !valid_asset_path(path) || (data == nullptr && size > 0))
    return HUT_EINVAL;
  if (self->assets.count(std::string_view(path))) return HUT_EEXIST;
  auto storage = std::make_unique<std::string[]>(3);
  storage[0] = path;
  storage[1] = content_type && *content_type ? content_type : "application/octet-stream";
  if (size > 0) storage[2].assign(static_cast<const char*>(data), size);
  PluginAsset asset{storage[0], storage[1], storage[2]};
  self->assets.emplace(storage[0], asset);
  self->owned_assets.push_back(std::move(storage));
  return HUT_OK;
}

}  // namespace hut

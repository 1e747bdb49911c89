// Dispatch: widget and HTTP requests to the plugin they name, asset
// lookups, room and user events to every plugin's hooks, and posts through
// the plugins' on_post filters. Every hook call is measured in the plugin's
// stats.

#include "plugins/runtime_impl.h"

#include <cJSON.h>

#include "util/wire_error.h"

namespace hut {

namespace {

// The bus error code and HTTP status for a hook's negative result (util/wire_error.h).
std::string bus_code(int rc) { return std::string(wire_error_name(wire_error_of_plugin(rc))); }

int http_status(int rc) { return wire_error_http_status(wire_error_of_plugin(rc)); }

PluginHttpResponse json_error_response(int status, const std::string& code, const std::string& message) {
  PluginHttpResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/json");
  r.body = http_error_body(code, message);
  return r;
}

hut_user c_user(const UserRef& u) {
  hut_user out;
  out.id = u.id.c_str();
  out.name = u.name.c_str();
  out.avatar = u.avatar.empty() ? nullptr : u.avatar.c_str();
  return out;
}

}  // namespace

Result<RequestId> RuntimeImpl::dispatch_widget(std::string_view plugin, WidgetRequest request,
                                               PluginAnswerFn answer) {
  hut_plugin* inst = loaded(plugin);
  if (inst == nullptr || inst->hooks.on_widget == nullptr)
    return Status::not_found("no plugin \"" + std::string(plugin) + "\" takes widget requests");
  request.request_id = requests_.add(inst->name, request.session_id, false, std::move(answer));
  hut_widget_request req;
  req.request_id = request.request_id;
  req.session_id = request.session_id.c_str();
  hut_user user;
  user.id = request.user.id.c_str();
  user.name = request.user.name.c_str();
  user.avatar = request.user.avatar.empty() ? nullptr : request.user.avatar.c_str();
  req.user = &user;
  if (request.data_json.empty()) {
    req.data_json = "null";
    req.data_len = 4;
  } else {
    req.data_json = request.data_json.c_str();
    req.data_len = request.data_json.size();
  }
  const hut_hooks& h = inst->hooks;
  int rc = measured(inst, [&] { return h.on_widget(inst, h.user_data, &req); });
  // A refusal answers the request, unless the plugin answered it already
  // (then this finds nothing pending).
  if (rc < 0) {
    std::string code = bus_code(rc), message = inst->name + ": " + hut_strerror(rc);
    PluginAnswer a;
    a.kind = PluginAnswer::Kind::kError;
    a.code = code;
    a.message = message;
    requests_.answer(inst->name, request.request_id, a);
  }
  return request.request_id;
}

Result<RequestId> RuntimeImpl::dispatch_http(std::string_view plugin, PluginHttpRequest request,
                                             std::string_view owner, PluginAnswerFn answer) {
  hut_plugin* inst = loaded(plugin);
  if (inst == nullptr || inst->hooks.on_http == nullptr)
    return Status::not_found("no plugin \"" + std::string(plugin) + "\" takes HTTP requests");
  request.request_id = requests_.add(inst->name, owner, true, std::move(answer));
  std::vector<hut_header> headers;
  headers.reserve(request.headers.size());
  for (const auto& [k, v] : request.headers) headers.push_back(hut_header{k.c_str(), v.c_str()});
  hut_http_request req;
  req.request_id = request.request_id;
  req.method = request.method.c_str();
  req.path = request.path.empty() ? "/" : request.path.c_str();
  req.query = request.query.c_str();
  req.headers = headers.data();
  req.header_count = headers.size();
  req.body = request.body.c_str();
  req.body_len = request.body.size();
  req.x_request_id = request.x_request_id.c_str();
  req.body_file = request.body_file.empty() ? nullptr : request.body_file.c_str();
  std::vector<hut_header> params;
  params.reserve(request.query_params.size());
  for (const auto& [k, v] : request.query_params) params.push_back(hut_header{k.c_str(), v.c_str()});
  req.query_params = params.data();
  req.query_param_count = params.size();
  if (req.body_file != nullptr) req.body_len = static_cast<size_t>(request.body_file_size);
  const hut_hooks& h = inst->hooks;
  int rc = measured(inst, [&] { return h.on_http(inst, h.user_data, &req); });
  if (rc < 0) {
    PluginHttpResponse r = json_error_response(http_status(rc), bus_code(rc), hut_strerror(rc));
    PluginAnswer a;
    a.kind = PluginAnswer::Kind::kHttp;
    a.http = &r;
    requests_.answer(inst->name, request.request_id, a);
  }
  return request.request_id;
}

const PluginAsset* RuntimeImpl::find_asset(std::string_view plugin, std::string_view path) const {
  if (!valid_asset_path(path)) return nullptr;
  const hut_plugin* inst = loaded(plugin);
  if (inst == nullptr) return nullptr;
  auto it = inst->assets.find(path);
  return it == inst->assets.end() ? nullptr : &it->second;
}

void RuntimeImpl::room_event(std::string_view room, const UserRef& user, RoomHook hut_hooks::*hook) {
  std::string room_s(room);
  hut_user u = c_user(user);
  for (hut_plugin* inst : loaded_in_order()) {
    RoomHook fn = inst->hooks.*hook;
    if (fn == nullptr) continue;
    measured(inst, [&] {
      fn(inst, inst->hooks.user_data, room_s.c_str(), &u);
      return 0;
    });
  }
}

void RuntimeImpl::session_closed(std::string_view session_id, const UserRef& user) {
  // Its requests end unanswered: there is nobody to answer. A plugin's later
  // answer finds nothing (HUT_ENOENT).
  requests_.drop_owner(session_id);
  hut_user u = c_user(user);
  const std::string id(session_id);
  for (hut_plugin* inst : loaded_in_order()) {
    auto fn = inst->hooks.on_session_closed;
    if (fn == nullptr) continue;
    measured(inst, [&] {
      fn(inst, inst->hooks.user_data, id.c_str(), &u);
      return 0;
    });
  }
}

void RuntimeImpl::user_event(const UserRef& user, UserHook hut_hooks::*hook) {
  hut_user u = c_user(user);
  for (hut_plugin* inst : loaded_in_order()) {
    UserHook fn = inst->hooks.*hook;
    if (fn == nullptr) continue;
    measured(inst, [&] {
      fn(inst, inst->hooks.user_data, &u);
      return 0;
    });
  }
}

Status RuntimeImpl::filter_post(std::string_view room, const UserRef& from, std::string* text,
                                std::string* data_json, std::string_view skip_plugin) {
  std::string room_s(room);
  hut_user u = c_user(from);
  for (hut_plugin* inst : loaded_in_order()) {
    if (inst->hooks.on_post == nullptr || inst->name == skip_plugin) continue;
    const char* text_in = text->c_str();
    const char* data_in = data_json->empty() ? nullptr : data_json->c_str();
    hut_post post{room_s.c_str(), &u, text_in, data_in, nullptr};
    int rc = measured(inst, [&] { return inst->hooks.on_post(inst, inst->hooks.user_data, &post); });
    if (rc < 0) {
      std::string why = post.refusal != nullptr && *post.refusal != '\0'
                            ? std::string(post.refusal)
                            : inst->name + " refused the post (" + hut_strerror(rc) + ")";
      return rc == HUT_EPERM ? Status::permission_denied(why) : Status::internal(why);
    }
    // Copied before either string changes: the plugin may point one field at
    // the other's text.
    std::string new_text = post.text != nullptr ? post.text : "";
    std::string new_data = post.data_json != nullptr ? post.data_json : "";
    if (post.text != text_in) *text = std::move(new_text);
    if (post.data_json != data_in) *data_json = std::move(new_data);
  }
  return Status::ok_status();
}

}  // namespace hut

// The words every part shares, at the bottom of the layers: who a user is,
// where an event goes, a widget request, a plugin's answer and the seam
// through which the bus hands a request to the plugins. Nothing here knows a part above util.
//
// Thread: plain values and an interface; see each.
#ifndef HUTOPIA_UTIL_VOCAB_H_
#define HUTOPIA_UTIL_VOCAB_H_

#include <hutopia/status.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hut {

// The space's handle for a request handed to a plugin (a widget op or an HTTP
// request); unique while the request is pending.
using RequestId = uint64_t;

struct UserRef {
  std::string id;
  std::string name;
  std::string avatar;  // may be empty
};

// Where a `widget` event goes.
enum class EventTarget { kSession, kUser, kRoom, kEveryone };

// A `widget` op from a bus session, handed to a plugin.
struct WidgetRequest {
  RequestId request_id = 0;
  std::string session_id;
  UserRef user;
  std::string data_json;  // the op's `data`, as JSON text ("null" when absent)
};

// A widget a loaded plugin offers, for the welcome's list.
struct WidgetInfo {
  std::string plugin;
  std::string tag;     // custom element name
  std::string script;  // URL of its module, e.g. /plugins/<plugin>/widget.js
};

// A plugin's answer to an HTTP request for /api/<plugin>/<path>.
struct PluginHttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string body_path;  // when set, the body is this file's content, read as it is sent
};

// The one answer a request handed to a plugin gets, from the plugin runtime
// that owns the request (libhutopia/plugins/pending_requests.h).
struct PluginAnswer {
  enum class Kind {
    kData,     // a widget request's data (JSON text, checked)
    kError,    // a widget request's error: `code` (a wire name) and `message`
    kHttp,     // an HTTP request's response
    kExpired,  // no answer by the deadline; `message` says so
    kStopped,  // the plugin stopped (unload, reload, shutdown); `message` says so
  };
  Kind kind = Kind::kData;
  RequestId request_id = 0;
  std::string_view plugin;
  std::string_view data_json;
  std::string_view code;
  std::string_view message;
  PluginHttpResponse* http = nullptr;  // kHttp; the callee may move from it
};
// Delivers an answer to the one who asked: HUT_OK, or a negative HUT_* code
// that refuses a plugin's answer before anything was sent (the request then
// stays pending, and the plugin may answer again). kExpired and kStopped
// answers cannot be refused.
using PluginAnswerFn = std::function<int(const PluginAnswer&)>;

// What the bus needs of the plugins: the widgets to announce and a way to
// hand them a request. The plugin runtime implements it. Loop thread only.
class WidgetDispatch {
 public:
  virtual ~WidgetDispatch() = default;
  virtual std::vector<WidgetInfo> widgets() const = 0;  // of loaded plugins
  // Hands a `widget` op to the plugin and returns its id (the request's
  // request_id is ignored). The dispatcher owns the request from here:
  // `answer` is called exactly once (perhaps before this returns) unless
  // the asking session closes first. kNotFound when no loaded plugin has
  // that name or it takes no widget requests; `answer` is then never called.
  virtual Result<RequestId> dispatch_widget(std::string_view plugin, WidgetRequest request,
                                            PluginAnswerFn answer) = 0;
  // How many requests of the session (in-process ones: "in-process") wait
  // for their answer.
  virtual size_t pending_requests(std::string_view session_id) const = 0;
  // A welcomed bus session closed: its pending requests end unanswered and
  // the plugins' on_session_closed hooks run.
  virtual void session_closed(std::string_view session_id, const UserRef& user) = 0;
};

}  // namespace hut

#endif  // HUTOPIA_UTIL_VOCAB_H_

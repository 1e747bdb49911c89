// The words every part shares, at the bottom of the layers: who a user is,
// where an event goes, a widget request and the seam through which the bus
// hands one to the plugins. Nothing here knows a part above util.
//
// Thread: plain values and an interface; see each.
#ifndef HUTOPIA_UTIL_VOCAB_H_
#define HUTOPIA_UTIL_VOCAB_H_

#include <hutopia/status.h>

#include <cstdint>
#include <string>
#include <string_view>
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

// What the bus needs of the plugins: the widgets to announce and a way to
// hand them a request. The plugin runtime implements it. Loop thread only.
class WidgetDispatch {
 public:
  virtual ~WidgetDispatch() = default;
  virtual std::vector<WidgetInfo> widgets() const = 0;  // of loaded plugins
  // Routes a `widget` op, which the caller has made pending. kNotFound when
  // no loaded plugin has that name or it takes no widget requests.
  virtual Status dispatch_widget(std::string_view plugin, const WidgetRequest& request) = 0;
  // A welcomed bus session closed (the plugins' on_session_closed hooks).
  virtual void session_closed(std::string_view session_id, const UserRef& user) = 0;
};

}  // namespace hut

#endif  // HUTOPIA_UTIL_VOCAB_H_

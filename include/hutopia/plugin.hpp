// A header-only C++ layer over the plugin ABI of <hutopia/plugin.h>.
//
// A C++ plugin derives from hut::plugin::Plugin, overrides what it handles,
// and names its class and descriptor once:
//
//   class Hello : public hut::plugin::Plugin {
//     int on_widget(const hut_widget_request& req) override {
//       return host().reply(req.request_id, R"({"hello":"world"})");
//     }
//   };
//   HUT_PLUGIN_CLASS(Hello, kDescriptor)
//
// Only the C ABI crosses into the space: the macro defines the three C entry
// points, no exception leaves them (one that escapes a hook becomes
// HUT_EINTERNAL), and no C++ type is passed to the host.
//
// Ownership: the entry points create the Plugin object in hut_plugin_init and
// delete it in hut_plugin_fini. In a space of ABI 1.5 or later the object is
// the instance's data (set_instance_data), so two spaces of one program that
// load the same library each have their own; older spaces keep it in a
// variable of the plugin's library. Thread: everything runs on the loop thread,
// except Host::post and Host::log, which any thread may call while the plugin
// is loaded.
#ifndef HUTOPIA_PLUGIN_HPP_
#define HUTOPIA_PLUGIN_HPP_

#include <hutopia/plugin.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace hut::plugin {

// The host table bound to one plugin instance. A cheap value; valid while the
// plugin is loaded.
class Host {
 public:
  Host() = default;
  Host(const hut_host* host, hut_plugin* self) : host_(host), self_(self) {}

  const hut_host* table() const { return host_; }
  hut_plugin* self() const { return self_; }

  void log(int level, const std::string& message) const { host_->log(self_, level, message.c_str()); }
  const char* strerror(int code) const { return host_->strerror(code); }

  int reply(uint64_t request_id, std::string_view data_json) const {
    return host_->reply(self_, request_id, data_json.data(), data_json.size());
  }
  int reply_error(uint64_t request_id, const std::string& code, const std::string& message) const {
    return host_->reply_error(self_, request_id, code.c_str(), message.c_str());
  }
  // Answers with the bus error code of a HUT_E* code (ABI 1.5); an empty
  // message sends the code's text. HUT_ENOTSUP in an older space.
  int reply_error_code(uint64_t request_id, int code, const std::string& message = {}) const {
    if (!HUT_HOST_HAS(host_, reply_error_code)) return HUT_ENOTSUP;
    return host_->reply_error_code(self_, request_id, code, message.empty() ? nullptr : message.c_str());
  }
  // True when the space's ABI is this major with at least `minor`.
  bool at_least(uint32_t minor) const { return HUT_HOST_AT_LEAST(host_, minor); }
  int send(hut_target target, const std::string& target_id, std::string_view data_json) const {
    return host_->send_widget_event(self_, target, target_id.c_str(), data_json.data(), data_json.size());
  }
  int send_to_everyone(std::string_view data_json) const {
    return send(HUT_TARGET_EVERYONE, std::string(), data_json);
  }
  int notify(const std::string& user_id, const std::string& title, const std::string& body = {},
             const std::string& url = {}) const {
    return host_->notify(self_, user_id.c_str(), title.c_str(), body.empty() ? nullptr : body.c_str(),
                         url.empty() ? nullptr : url.c_str());
  }

  // The value of `key`, or nothing when absent or on error (*rc says which).
  std::optional<std::string> kv_get(const std::string& key, int* rc = nullptr) const {
    std::string value(256, '\0');
    size_t len = 0;
    int r = host_->kv_get(self_, key.c_str(), value.data(), value.size(), &len);
    if (r == HUT_ERANGE) {
      value.resize(len);
      r = host_->kv_get(self_, key.c_str(), value.data(), value.size(), &len);
    }
    if (rc) *rc = r;
    if (r != HUT_OK) return std::nullopt;
    value.resize(len);
    return value;
  }
  int kv_put(const std::string& key, std::string_view value) const {
    return host_->kv_put(self_, key.c_str(), value.data(), value.size());
  }
  int kv_delete(const std::string& key) const { return host_->kv_delete(self_, key.c_str()); }

  int http_respond(uint64_t request_id, int status, std::string_view body,
                   const std::vector<std::pair<std::string, std::string>>& headers = {}) const {
    std::vector<hut_header> h;
    h.reserve(headers.size());
    for (const auto& [k, v] : headers) h.push_back(hut_header{k.c_str(), v.c_str()});
    return host_->http_respond(self_, request_id, status, h.data(), h.size(), body.data(), body.size());
  }
  int register_asset(const std::string& path, const std::string& content_type, std::string_view data) const {
    return host_->register_asset(self_, path.c_str(), content_type.c_str(), data.data(), data.size());
  }

 private:
  const hut_host* host_ = nullptr;
  hut_plugin* self_ = nullptr;
};

// The base of a C++ plugin. Override what the plugin handles; the defaults
// refuse.
class Plugin {
 public:
  Plugin() = default;
  virtual ~Plugin() {
    // Callbacks posted but dropped at unload are freed here.
    std::lock_guard<std::mutex> lock(post_mu_);
    for (auto* p : posted_) delete p;
  }
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // Called once after construction; `config_json` is the plugin's TOML
  // configuration as JSON. Return 0, or a HUT_E* code with `error` set.
  virtual int init(std::string_view config_json, std::string& error) {
    (void)config_json;
    (void)error;
    return HUT_OK;
  }
  virtual int on_widget(const hut_widget_request& req) {
    (void)req;
    return HUT_ENOENT;
  }
  virtual int on_http(const hut_http_request& req) {
    (void)req;
    return HUT_ENOENT;
  }

  const Host& host() const { return host_; }

  // Runs fn on the loop after timeout_ms, then every repeat_ms when > 0.
  int start_timer(uint64_t timeout_ms, uint64_t repeat_ms, std::function<void()> fn,
                  uint64_t* timer_id = nullptr) {
    auto t = std::make_unique<Timer>(Timer{this, 0, repeat_ms > 0, std::move(fn)});
    uint64_t id = 0;
    int rc = host_.table()->timer_start(host_.self(), timeout_ms, repeat_ms, &Plugin::timer_cb, t.get(), &id);
    if (rc != HUT_OK) return rc;
    t->id = id;
    timers_[id] = std::move(t);
    if (timer_id) *timer_id = id;
    return HUT_OK;
  }
  int stop_timer(uint64_t timer_id) {
    int rc = host_.table()->timer_stop(host_.self(), timer_id);
    timers_.erase(timer_id);
    return rc;
  }
  // Runs fn on the loop thread. THREAD: any, while the plugin is loaded.
  int post(std::function<void()> fn) {
    auto* p = new Posted{this, std::move(fn)};
    {
      std::lock_guard<std::mutex> lock(post_mu_);
      posted_.insert(p);
    }
    int rc = host_.table()->post(host_.self(), &Plugin::post_cb, p);
    if (rc != HUT_OK) {
      std::lock_guard<std::mutex> lock(post_mu_);
      posted_.erase(p);
      delete p;
    }
    return rc;
  }

  // Used by HUT_PLUGIN_CLASS.
  void bind(const hut_host* host, hut_plugin* self) { host_ = Host(host, self); }

 private:
  struct Timer {
    Plugin* owner;
    uint64_t id;
    bool repeating;
    std::function<void()> fn;
  };
  struct Posted {
    Plugin* owner;
    std::function<void()> fn;
  };
  static void timer_cb(hut_plugin*, void* arg) {
    auto* t = static_cast<Timer*>(arg);
    Plugin* owner = t->owner;
    std::function<void()> fn = t->repeating ? t->fn : std::move(t->fn);
    if (!t->repeating) owner->timers_.erase(t->id);
    try {
      fn();
    } catch (...) {
      owner->host_.log(HUT_LOG_ERROR, "a timer callback threw");
    }
  }
  static void post_cb(hut_plugin*, void* arg) {
    auto* p = static_cast<Posted*>(arg);
    {
      std::lock_guard<std::mutex> lock(p->owner->post_mu_);
      p->owner->posted_.erase(p);
    }
    std::unique_ptr<Posted> own(p);
    try {
      own->fn();
    } catch (...) {
      own->owner->host_.log(HUT_LOG_ERROR, "a posted callback threw");
    }
  }

  Host host_;
  std::map<uint64_t, std::unique_ptr<Timer>> timers_;
  std::mutex post_mu_;
  std::set<Posted*> posted_;  // guarded by post_mu_
};

namespace detail {

inline int call_widget(hut_plugin*, void* user, const hut_widget_request* req) {
  try {
    return static_cast<Plugin*>(user)->on_widget(*req);
  } catch (...) {
    return HUT_EINTERNAL;
  }
}

inline int call_http(hut_plugin*, void* user, const hut_http_request* req) {
  try {
    return static_cast<Plugin*>(user)->on_http(*req);
  } catch (...) {
    return HUT_EINTERNAL;
  }
}

inline void copy_error(char* err, size_t errlen, const std::string& msg) {
  if (err == nullptr || errlen == 0) return;
  size_t n = msg.size() < errlen - 1 ? msg.size() : errlen - 1;
  msg.copy(err, n);
  err[n] = '\0';
}

// Where the instance's object is kept: its instance data in a space of ABI
// 1.5 or later, else `slot`.
inline void keep(Plugin** slot, const hut_host* host, hut_plugin* self, Plugin* p) {
  if (HUT_HOST_HAS(host, set_instance_data) && host->set_instance_data(self, p) == HUT_OK) return;
  *slot = p;
}

// `slot` is a variable of the plugin's own translation unit (not a static of
// an inline function, which would keep the library from being unloaded).
template <typename T>
int init(Plugin** slot, const hut_host** host_slot, const hut_host* host, hut_plugin* self,
         const char* config_json, char* err, size_t errlen) {
  try {
    auto p = std::make_unique<T>();
    p->bind(host, self);
    std::string error;
    int rc = p->init(config_json ? config_json : "{}", error);
    if (rc != HUT_OK) {
      copy_error(err, errlen, error);
      return rc;
    }
    hut_hooks hooks{};
    hooks.user_data = p.get();
    hooks.on_widget = &call_widget;
    hooks.on_http = &call_http;
    rc = host->register_hooks(self, &hooks, sizeof hooks);
    if (rc != HUT_OK) {
      copy_error(err, errlen, "register_hooks failed");
      return rc;
    }
    *host_slot = host;
    keep(slot, host, self, p.release());
    return HUT_OK;
  } catch (const std::exception& e) {
    copy_error(err, errlen, e.what());
    return HUT_EINTERNAL;
  } catch (...) {
    copy_error(err, errlen, "init threw");
    return HUT_EINTERNAL;
  }
}

inline void fini(Plugin** slot, const hut_host* host, hut_plugin* self) {
  if (host != nullptr && HUT_HOST_HAS(host, instance_data)) {
    if (auto* p = static_cast<Plugin*>(host->instance_data(self))) {
      host->set_instance_data(self, nullptr);
      delete p;
      return;
    }
  }
  delete *slot;
  *slot = nullptr;
}

}  // namespace detail
}  // namespace hut::plugin

// Defines the plugin's three C entry points for class CLASS (derived from
// hut::plugin::Plugin, default-constructible) and the hut_plugin_descriptor
// DESCRIPTOR (an object with static storage).
#define HUT_PLUGIN_CLASS(CLASS, DESCRIPTOR)                                                             \
  static ::hut::plugin::Plugin* hut_plugin_instance_ = nullptr;                                         \
  static const hut_host* hut_plugin_host_ = nullptr;                                                    \
  extern "C" HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) {                 \
    return &(DESCRIPTOR);                                                                               \
  }                                                                                                     \
  extern "C" HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* host, hut_plugin* self,              \
                                                   const char* config_json, char* err, size_t errlen) { \
    return ::hut::plugin::detail::init<CLASS>(&hut_plugin_instance_, &hut_plugin_host_, host, self,     \
                                              config_json, err, errlen);                                \
  }                                                                                                     \
  extern "C" HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {                                 \
    ::hut::plugin::detail::fini(&hut_plugin_instance_, hut_plugin_host_, self);                         \
  }

#endif  // HUTOPIA_PLUGIN_HPP_

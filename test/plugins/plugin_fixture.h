// What the plugin tests share: the space's side of the plugin seam, which
// records what plugins asked of it, and a fixture that runs the real runtime
// on a real libuv loop over a temporary plugins folder and data folder, with
// a real store (an SQLite file in the data folder) for the key-value data.
//
// Thread: the test thread runs the loop; Recorder is called on it.
#ifndef HUTOPIA_TEST_PLUGINS_PLUGIN_FIXTURE_H_
#define HUTOPIA_TEST_PLUGINS_PLUGIN_FIXTURE_H_

#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "plugins/runtime.h"
#include "store/store.h"
#include "test_util.h"

namespace hut::test {

class Recorder final : public PluginServices {
 public:
  struct Reply {
    uint64_t id = 0;
    bool ok = false;
    std::string data;  // ok
    std::string code;  // error
    std::string message;
    std::thread::id thread;
  };
  struct Event {
    std::string plugin;
    EventTarget target;
    std::string target_id;
    std::string data;
  };
  struct Notice {
    std::string plugin, user, title, body, url;
  };

  // Like the space, it owns the requests dispatched through the fixture:
  // one answer each, from the plugin they went to.
  struct Pending {
    std::string plugin;
    bool http = false;
  };
  bool take(std::string_view plugin, uint64_t id, bool http) {
    auto it = pending.find(id);
    if (it == pending.end() || it->second.plugin != plugin || it->second.http != http) return false;
    pending.erase(it);
    return true;
  }

  int reply(std::string_view plugin, uint64_t id, std::string_view data) override {
    if (!take(plugin, id, false)) return HUT_ENOENT;
    replies.push_back(Reply{id, true, std::string(data), {}, {}, std::this_thread::get_id()});
    return 0;
  }
  int reply_error(std::string_view plugin, uint64_t id, std::string_view code,
                  std::string_view message) override {
    if (!take(plugin, id, false)) return HUT_ENOENT;
    replies.push_back(
        Reply{id, false, {}, std::string(code), std::string(message), std::this_thread::get_id()});
    return 0;
  }
  void plugin_stopped(std::string_view plugin, std::string_view message) override {
    std::vector<std::pair<uint64_t, bool>> ids;
    for (const auto& [id, p] : pending)
      if (p.plugin == plugin) ids.emplace_back(id, p.http);
    for (auto [id, http] : ids) {
      if (http) {
        PluginHttpResponse r;
        r.status = 503;
        r.body = std::string(message);
        http_respond(plugin, id, std::move(r));
      } else {
        reply_error(plugin, id, "unavailable", message);
      }
    }
  }
  int send_widget_event(std::string_view plugin, EventTarget target, std::string_view target_id,
                        std::string_view data) override {
    events.push_back(Event{std::string(plugin), target, std::string(target_id), std::string(data)});
    return 0;
  }
  int notify(std::string_view plugin, std::string_view user, std::string_view title, std::string_view body,
             std::string_view url) override {
    notices.push_back(Notice{std::string(plugin), std::string(user), std::string(title), std::string(body),
                             std::string(url)});
    return 0;
  }
  int http_respond(std::string_view plugin, uint64_t id, PluginHttpResponse response) override {
    if (!take(plugin, id, true)) return HUT_ENOENT;
    responses.emplace_back(id, std::move(response));
    return 0;
  }

  // Room posts of plugins to "lobby" are held, not run: the test runs their
  // `done` (room_calls) when it wants; other rooms do not exist.
  int room_post(std::string_view plugin, std::string_view room, std::string_view text,
                std::string_view data_json, RoomDone done) override {
    (void)plugin, (void)text, (void)data_json;
    if (room != "lobby") return HUT_ENOENT;
    room_calls.push_back(std::move(done));
    return HUT_OK;
  }

  const Reply* reply_to(uint64_t id) const {
    for (const auto& r : replies)
      if (r.id == id) return &r;
    return nullptr;
  }
  const PluginHttpResponse* response_to(uint64_t id) const {
    for (const auto& [rid, r] : responses)
      if (rid == id) return &r;
    return nullptr;
  }
  size_t count_replies(uint64_t id) const {
    size_t n = 0;
    for (const auto& r : replies) n += r.id == id;
    return n;
  }
  bool has_event(std::string_view plugin, std::string_view data) const {
    for (const auto& e : events)
      if (e.plugin == plugin && e.data == data) return true;
    return false;
  }

  std::vector<Reply> replies;
  std::vector<Event> events;
  std::vector<Notice> notices;
  std::vector<std::pair<uint64_t, PluginHttpResponse>> responses;
  std::map<uint64_t, Pending> pending;
  std::vector<RoomDone> room_calls;
};

class PluginFixture {
 public:
  PluginFixture() { uv_loop_init(&loop_); }
  ~PluginFixture() {
    stop();
    // Every handle of the runtime is closed once it is gone.
    CHECK(uv_loop_close(&loop_) == 0);
  }
  PluginFixture(const PluginFixture&) = delete;
  PluginFixture& operator=(const PluginFixture&) = delete;

  // Puts a built plugin file into the plugins folder as <as>.so, by copy and
  // rename so that a file in use is replaced, never rewritten.
  void add_file(const std::string& built, const std::string& as) {
    std::string tmp = plugins_.file("." + as + ".tmp");
    std::filesystem::copy_file(built, tmp, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(tmp, plugins_.file(as + ".so"));
  }
  // A test plugin of test/plugins.
  void add(const std::string& name, const std::string& as = "") {
    add_file(build_path("test/plugins/" + name + ".so"), as.empty() ? name : as);
  }
  // A first-party plugin of plugins/.
  void add_first_party(const std::string& name) { add_file(build_path("plugins/" + name + ".so"), name); }
  void write_config(const std::string& plugin, const std::string& toml) {
    write_file(plugins_.file(plugin + ".toml"), toml);
  }

  // Opens the store and creates the runtime; a runtime that cannot be
  // created (its status in create_status()) throws.
  PluginRuntime& start() {
    if (!store_) {
      // Tests hold the file's write lock for a while (kv_test): the store's
      // writer waits for it however slow the machine is.
      StoreOptions patient;
      patient.busy_timeout_ms = 120000;
      auto st = open_store(&loop_, "sqlite://" + store_path(), patient);
      if (!st.ok()) throw std::runtime_error(st.status().to_string());
      store_ = std::move(*st);
    }
    PluginRuntime::Options options;
    options.plugins_dir = plugins_.path();
    options.data_dir = data_dir();
    options.store = store_.get();
    auto rt = PluginRuntime::create(&loop_, &services, options);
    create_status_ = rt.status();
    if (!rt.ok()) throw std::runtime_error(rt.status().to_string());
    runtime_ = std::move(*rt);
    return *runtime_;
  }
  // Shuts the runtime down, closes the store (which commits every write in
  // flight and runs their callbacks), then destroys both: the way a space
  // stops.
  // With `close_store` false the store is destroyed without close(), as a
  // space destroyed while running does: it commits the queued writes and
  // drops their callbacks.
  void stop(bool close_store = true) {
    if (runtime_) runtime_->shutdown();
    if (store_ && close_store) {
      bool closed = false;
      store_->close([&] { closed = true; });
      run_until([&] { return closed; }, 10000);
      CHECK(closed);
    }
    store_.reset();
    runtime_.reset();
    for (int i = 0; i < 10 && uv_run(&loop_, UV_RUN_NOWAIT) != 0; ++i) {
    }
  }
  // Stops as above and starts a new store and runtime on the same folders.
  PluginRuntime& restart() {
    stop();
    return start();
  }
  PluginRuntime& rt() { return *runtime_; }
  Store& store() { return *store_; }
  const Status& create_status() const { return create_status_; }
  // The runtime's data folder and the store's file.
  std::string data_dir() const { return data_.path() + "/space"; }
  std::string store_path() const { return data_.path() + "/space/space.db"; }

  // Runs the loop until pred() holds or `ms` passed; returns pred().
  bool run_until(const std::function<bool()>& pred, int ms = 3000) {
    uv_timer_t wake;
    uv_timer_init(&loop_, &wake);
    uv_timer_start(
        &wake, [](uv_timer_t*) {}, 5, 5);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (!pred() && std::chrono::steady_clock::now() < deadline) uv_run(&loop_, UV_RUN_ONCE);
    uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
    return pred();
  }
  // Runs the loop for `ms` whatever happens.
  void run_for(int ms) {
    run_until([] { return false; }, ms);
  }

  // Sends a `widget` op to `plugin`; returns the request id.
  uint64_t widget(const std::string& plugin, const std::string& data_json, const std::string& session = "s1",
                  Status* status = nullptr) {
    WidgetRequest req;
    req.request_id = next_id_++;
    req.session_id = session;
    req.user = UserRef{"u1", "Ada", ""};
    req.data_json = data_json;
    services.pending[req.request_id] = Recorder::Pending{plugin, false};
    Status st = runtime_->dispatch_widget(plugin, req);
    if (!st.ok()) services.pending.erase(req.request_id);
    if (status) *status = st;
    return req.request_id;
  }
  // The answer to a widget request, waiting for it on the loop.
  const Recorder::Reply* answer(uint64_t id, int ms = 3000) {
    run_until([&] { return services.reply_to(id) != nullptr; }, ms);
    return services.reply_to(id);
  }

  uint64_t http(const std::string& plugin, const std::string& method, const std::string& path,
                const std::string& query = "", const std::string& body = "",
                std::vector<std::pair<std::string, std::string>> headers = {}, Status* status = nullptr) {
    PluginHttpRequest req;
    req.request_id = next_id_++;
    req.method = method;
    req.path = path;
    req.query = query;
    req.body = body;
    req.headers = std::move(headers);
    req.x_request_id = "rid-" + std::to_string(req.request_id);
    services.pending[req.request_id] = Recorder::Pending{plugin, true};
    Status st = runtime_->dispatch_http(plugin, req);
    if (!st.ok()) services.pending.erase(req.request_id);
    if (status) *status = st;
    return req.request_id;
  }
  const PluginHttpResponse* response(uint64_t id, int ms = 3000) {
    run_until([&] { return services.response_to(id) != nullptr; }, ms);
    return services.response_to(id);
  }

  PluginInfo info(const std::string& name) const {
    for (auto& i : runtime_->list())
      if (i.name == name) return i;
    return PluginInfo{};
  }
  PluginStats stats(const std::string& name) const {
    for (auto& s : runtime_->stats())
      if (s.name == name) return s;
    return PluginStats{};
  }

  const std::string& plugins_dir() const { return plugins_.path(); }
  uv_loop_t* loop() { return &loop_; }

  Recorder services;

 private:
  uv_loop_t loop_;
  TempDir plugins_;
  TempDir data_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<PluginRuntime> runtime_;
  Status create_status_;
  uint64_t next_id_ = 1;
};

}  // namespace hut::test

#endif  // HUTOPIA_TEST_PLUGINS_PLUGIN_FIXTURE_H_

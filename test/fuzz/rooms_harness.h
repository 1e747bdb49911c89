// A space's chat rooms without a network, for the fuzz targets: the real Bus
// and Rooms on a real SQLite store in a fresh temporary directory (on tmpfs
// when there is one), with sessions whose connections have no socket behind
// them (their output is dropped).
//
// Every call to the store goes through a counting wrapper, so the harness
// knows when nothing is in flight any more: drain() runs the loop until every
// callback the rooms asked for has run, which makes each input complete
// deterministically. The wrapper also remembers the ids of the rooms the
// store created (direct-message rooms get random ids), so that later ops can
// name them.
//
// The first-party plugins that take part in rooms and widget ops (moderation,
// a post filter refusing "spam"; counter, which writes to the store; echo)
// are loaded from the build's plugins folder, found beside the fuzz program
// (<build>/test/fuzz/<target> -> <build>/plugins), through a plugins folder
// of the World's own that links to them and holds moderation.toml.
//
// One World serves every input of a fuzz process (shared()): opening a
// store and loading plugins for each input held a run to a few dozen inputs
// a second. Between inputs, reset() closes the sessions, deletes every room
// through the store (their members, messages and read markers go with them)
// and starts a new Bus and new Rooms, so each input meets an empty space.
// What stays: the users the store has seen (names only) and the plugins with
// their key-value rows (the counter's count), none of which changes what an
// op is allowed to do, so a crash still reproduces from its input alone.
#ifndef HUTOPIA_TEST_FUZZ_ROOMS_HARNESS_H_
#define HUTOPIA_TEST_FUZZ_ROOMS_HARNESS_H_

#include <stdlib.h>
#include <uv.h>

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bus/bus.h"
#include "plugins/runtime.h"
#include "rooms/rooms.h"
#include "store/store.h"
#include "util/log.h"

namespace hut::fuzz {

// Forwards to the real store and counts the callbacks still to run.
class CountingStore final : public Store {
 public:
  explicit CountingStore(std::unique_ptr<Store> inner) : inner_(std::move(inner)) {}

  size_t in_flight() const { return in_flight_; }
  // Room ids the store created (create_room, open_dm), in order.
  const std::vector<std::string>& created_rooms() const { return created_; }
  // Forgets them (the rooms were deleted).
  void forget_rooms() { created_.clear(); }

  Result<StoreState> load_state() override { return inner_->load_state(); }
  void put_user(UserRecord user, DoneCallback done) override {
    inner_->put_user(std::move(user), wrap(done));
  }
  void create_room(RoomRecord room, std::vector<MemberRecord> members, DoneCallback done) override {
    std::string id = room.id;
    inner_->create_room(std::move(room), std::move(members), wrap<Status>([this, id, done](Status st) {
                          if (st.ok()) remember(id);
                          if (done) done(std::move(st));
                        }));
  }
  void delete_room(std::string room, DoneCallback done) override {
    inner_->delete_room(std::move(room), wrap(done));
  }
  void open_dm(UserRecord a, UserRecord b, std::string new_room_id, int64_t ts,
               Callback<DmResult> done) override {
    inner_->open_dm(std::move(a), std::move(b), std::move(new_room_id), ts,
                    wrap<Result<DmResult>>([this, done](Result<DmResult> r) {
                      if (r.ok()) remember(r->room.id);
                      if (done) done(std::move(r));
                    }));
  }
  void set_topic(std::string room, std::string topic, DoneCallback done) override {
    inner_->set_topic(std::move(room), std::move(topic), wrap(done));
  }
  void set_mute_all(std::string room, bool on, DoneCallback done) override {
    inner_->set_mute_all(std::move(room), on, wrap(done));
  }
  void put_member(MemberRecord member, DoneCallback done) override {
    inner_->put_member(std::move(member), wrap(done));
  }
  void remove_member(std::string room, std::string user, DoneCallback done) override {
    inner_->remove_member(std::move(room), std::move(user), wrap(done));
  }
  void set_ban(std::string room, std::string user, bool banned, DoneCallback done) override {
    inner_->set_ban(std::move(room), std::move(user), banned, wrap(done));
  }
  void set_role(std::string room, std::string user, Role role, DoneCallback done) override {
    inner_->set_role(std::move(room), std::move(user), role, wrap(done));
  }
  void set_mute(std::string room, std::string user, std::optional<int64_t> until,
                DoneCallback done) override {
    inner_->set_mute(std::move(room), std::move(user), until, wrap(done));
  }
  void post(PostRequest request, Callback<PostResult> done) override {
    inner_->post(std::move(request), wrap(done));
  }
  void edit(std::string room, uint64_t seq, std::string text, int64_t edited_ts, std::string author,
            Callback<int64_t> done) override {
    inner_->edit(std::move(room), seq, std::move(text), edited_ts, std::move(author), wrap(done));
  }
  void delete_message(std::string room, uint64_t seq, std::string author, DoneCallback done) override {
    inner_->delete_message(std::move(room), seq, std::move(author), wrap(done));
  }
  void mark_read(std::string room, std::string user, uint64_t seq, Callback<uint64_t> done) override {
    inner_->mark_read(std::move(room), std::move(user), seq, wrap(done));
  }
  void kv_put(std::string plugin, std::string key, std::string value, DoneCallback done) override {
    inner_->kv_put(std::move(plugin), std::move(key), std::move(value), wrap(done));
  }
  void kv_delete(std::string plugin, std::string key, DoneCallback done) override {
    inner_->kv_delete(std::move(plugin), std::move(key), wrap(done));
  }
  void put_resume(std::string hash, UserRecord user, int64_t expires_ts, DoneCallback done) override {
    inner_->put_resume(std::move(hash), std::move(user), expires_ts, wrap(done));
  }
  void redeem_resume(std::string hash, int64_t now, std::string new_hash, int64_t new_expires_ts,
                     Callback<UserRecord> done) override {
    inner_->redeem_resume(std::move(hash), now, std::move(new_hash), new_expires_ts, wrap(done));
  }
  void history(std::string room, uint64_t before_seq, int limit, Callback<HistoryPage> done) override {
    inner_->history(std::move(room), before_seq, limit, wrap(done));
  }
  void history_after(std::string room, uint64_t after_seq, int limit, Callback<HistoryPage> done) override {
    inner_->history_after(std::move(room), after_seq, limit, wrap(done));
  }
  void get_message(std::string room, uint64_t seq, Callback<MessageRecord> done) override {
    inner_->get_message(std::move(room), seq, wrap(done));
  }
  void list_rooms(Callback<std::vector<RoomRecord>> done) override { inner_->list_rooms(wrap(done)); }
  void get_room(std::string room, Callback<RoomRecord> done) override {
    inner_->get_room(std::move(room), wrap(done));
  }
  void members(std::string room, Callback<std::vector<MemberRecord>> done) override {
    inner_->members(std::move(room), wrap(done));
  }
  void member(std::string room, std::string user, Callback<MemberRecord> done) override {
    inner_->member(std::move(room), std::move(user), wrap(done));
  }
  void sanctions(std::string room, Callback<std::vector<SanctionRecord>> done) override {
    inner_->sanctions(std::move(room), wrap(done));
  }
  void read_markers(std::string room, Callback<std::vector<ReadMarker>> done) override {
    inner_->read_markers(std::move(room), wrap(done));
  }
  void unread(std::string room, std::string user, Callback<uint64_t> done) override {
    inner_->unread(std::move(room), std::move(user), wrap(done));
  }
  void unread_counts(std::string user, Callback<std::vector<RoomUnread>> done) override {
    inner_->unread_counts(std::move(user), wrap(done));
  }
  void kv_get(std::string plugin, std::string key, Callback<std::string> done) override {
    inner_->kv_get(std::move(plugin), std::move(key), wrap(done));
  }
  Status kv_get_now(std::string_view plugin, std::string_view key, std::string* value) override {
    return inner_->kv_get_now(plugin, key, value);
  }
  Result<uint64_t> import_plugin_kv(const std::string& path) override {
    return inner_->import_plugin_kv(path);
  }
  void close(std::function<void()> done) override { inner_->close(std::move(done)); }
  StoreStats stats() const override { return inner_->stats(); }

 private:
  template <typename A>
  std::function<void(A)> wrap(std::function<void(A)> done) {
    ++in_flight_;
    return [this, done = std::move(done)](A a) {
      --in_flight_;
      if (done) done(std::move(a));
    };
  }
  void remember(const std::string& id) {
    for (const std::string& r : created_)
      if (r == id) return;
    created_.push_back(id);
  }

  std::unique_ptr<Store> inner_;
  size_t in_flight_ = 0;
  std::vector<std::string> created_;
};

// What the network layer lets through to the bus: valid UTF-8 (it closes
// the connection with 1007 otherwise). Each byte of a broken sequence
// becomes '?'.
inline std::string valid_utf8(std::string s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n != 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok && n > 1) {
      uint32_t cp = c & (0x7F >> n);
      for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[n] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (!ok) {
      s[i++] = '?';
      continue;
    }
    i += n;
  }
  return s;
}

// The users of the sessions: several sessions may belong to one user.
inline const char* const kUsers[] = {"alice", "bob", "carol", "dave", "erin"};
inline constexpr size_t kUserCount = sizeof kUsers / sizeof kUsers[0];

// The build's plugins folder; empty when it cannot be found.
inline std::string built_plugins_dir() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  std::filesystem::path dir = exe.parent_path().parent_path().parent_path() / "plugins";
  if (!std::filesystem::exists(dir / "moderation.so", ec)) return {};
  return dir.string();
}

class World final : public PluginServices {
 public:
  static constexpr size_t kSessions = 6;
  // Session i belongs to user kSessionUser[i]: alice has two sessions.
  static constexpr size_t kSessionUser[kSessions] = {0, 1, 2, 0, 3, 4};

  World() {
    set_log_level(LogLevel::kError);  // a line per plugin load would drown the fuzzer's output
    uv_loop_init(&loop_);
    const char* base = std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
    std::string tmpl = std::string(base) + "/hut-fuzz-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) __builtin_trap();
    dir_ = tmpl;

    TokenVerifier::Options vo;
    vo.audience = "fuzz";
    verifier_ = std::make_unique<TokenVerifier>(vo);
    auto key = Key::hs256("fuzz-secret-of-thirty-two-bytes!!");
    if (!key.ok()) __builtin_trap();
    key_ = std::make_unique<Key>(std::move(*key));
    verifier_->trust(*key_, "fuzz-app");

    auto opened = open_store(&loop_, "sqlite://" + dir_ + "/space.db");
    if (!opened.ok()) __builtin_trap();
    store_ = std::make_unique<CountingStore>(std::move(*opened));
    load_plugins();
    start_space();
  }

  // The World of this fuzz process, reset for a new input.
  static World& shared() {
    static World* world = new World();  // lives as long as the process
    static bool first = true;
    if (!first) world->reset();
    first = false;
    return *world;
  }

  // Ends the last input's space (see above) and starts an empty one.
  void reset() {
    stop_space();
    bool listed = false;
    std::vector<RoomRecord> rooms;
    store_->list_rooms([&](Result<std::vector<RoomRecord>> r) {
      if (r.ok()) rooms = std::move(*r);
      listed = true;
    });
    drain();
    if (!listed) __builtin_trap();
    for (const RoomRecord& r : rooms) store_->delete_room(r.id, nullptr);
    drain();
    store_->forget_rooms();
    start_space();
  }

 private:
  void start_space() {
    replay_ = std::make_unique<ReplayCache>();
    bus::Bus::Options bo;
    bo.space_id = "fuzz";
    bo.space_name = "Fuzz";
    bo.bad_frames = 1 << 30;  // the budget would close sessions that fuzzing needs
    bus_ = std::make_unique<bus::Bus>(bo, &loop_, verifier_.get(), replay_.get());
    rooms::Rooms::Options ro;
    rooms_ = std::make_unique<rooms::Rooms>(ro, &loop_, store_.get(), bus_.get());
    if (!rooms_->load().ok()) __builtin_trap();
    bus_->set_rooms(rooms_.get());
    if (plugins_) {
      bus_->set_plugins(plugins_.get());
      rooms_->set_plugins(plugins_.get());
    }
  }

  void stop_space() {
    drain();
    for (size_t i = 0; i < kSessions; ++i) close_session(i);
    drain();
    if (plugins_) {
      bus_->set_plugins(nullptr);
      rooms_->set_plugins(nullptr);
    }
    bus_->set_rooms(nullptr);
    rooms_.reset();
    bus_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);  // frees the handles they closed
  }

  void load_plugins() {
    static const std::string built = built_plugins_dir();
    if (built.empty()) {
      static bool warned = false;
      if (!warned) fprintf(stderr, "rooms_harness: no built plugins found; fuzzing without plugins\n");
      warned = true;
      return;
    }
    std::filesystem::path pdir = std::filesystem::path(dir_) / "plugins";
    std::filesystem::create_directories(pdir);
    for (const char* name : {"moderation", "counter", "echo"})
      std::filesystem::create_symlink(std::filesystem::path(built) / (std::string(name) + ".so"),
                                      pdir / (std::string(name) + ".so"));
    FILE* f = fopen((pdir / "moderation.toml").c_str(), "w");
    if (f == nullptr) __builtin_trap();
    fputs("words = [\"spam\"]\naction = \"refuse\"\n", f);
    fclose(f);
    PluginRuntime::Options po;
    po.plugins_dir = pdir.string();
    po.data_dir = dir_;
    po.store = store_.get();
    auto rt = PluginRuntime::create(&loop_, this, po);
    if (!rt.ok()) __builtin_trap();
    plugins_ = std::move(*rt);
    for (const char* name : {"moderation", "counter", "echo"})
      if (!plugins_->load(name).ok()) __builtin_trap();
  }

 public:
  ~World() {
    stop_space();
    if (plugins_) {
      plugins_->shutdown();
      drain();
    }
    bool closed = false;
    store_->close([&] { closed = true; });
    while (!closed) uv_run(&loop_, UV_RUN_ONCE);
    plugins_.reset();
    store_.reset();
    uv_run(&loop_, UV_RUN_NOWAIT);
    if (uv_loop_close(&loop_) != 0) __builtin_trap();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  uv_loop_t* loop() { return &loop_; }
  bus::Bus& bus() { return *bus_; }
  rooms::Rooms& rooms() { return *rooms_; }
  CountingStore& store() { return *store_; }

  // Opens session i (when closed) and sends its hello.
  void open_session(size_t i) {
    if (open_[i]) return;
    conns_[i] = std::make_unique<net::WsConnection>();
    bus_->on_open(conns_[i].get());
    open_[i] = true;
    Claims c;
    c.iss = "fuzz-app";
    c.sub = kUsers[kSessionUser[i]];
    c.name = std::string("User ") + c.sub;
    c.aud = "fuzz";
    c.jti = "jti-" + std::to_string(++jti_);
    c.iat = static_cast<int64_t>(std::time(nullptr));
    c.exp = c.iat + 300;
    auto token = sign_token(*key_, c);
    if (!token.ok()) __builtin_trap();
    bus_->on_message(conns_[i].get(), R"({"op":"hello","token":")" + *token + "\"}");
  }
  void close_session(size_t i) {
    if (!open_[i]) return;
    bus_->on_close(conns_[i].get());
    conns_[i].reset();
    open_[i] = false;
  }
  // A frame from session i, opening it first when it is closed.
  void send(size_t i, std::string_view frame) {
    open_session(i);
    bus_->on_message(conns_[i].get(), frame);
  }

  // Runs the loop until no store callback is left to run.
  void drain() {
    while (store_->in_flight() > 0) uv_run(&loop_, UV_RUN_ONCE);
  }

  // PluginServices, routed as the space routes them.
  int send_widget_event(std::string_view plugin, EventTarget target, std::string_view target_id,
                        std::string_view data_json) override {
    if (!bus::is_json(data_json)) return HUT_EINVAL;
    bus_->send_event(target, target_id, bus::make_widget_event(plugin, data_json));
    return HUT_OK;
  }
  int notify(std::string_view, std::string_view, std::string_view, std::string_view,
             std::string_view) override {
    return HUT_OK;
  }
  int room_post(std::string_view plugin, std::string_view room, std::string_view text,
                std::string_view data_json, RoomDone done) override {
    return rooms_->plugin_post(plugin, room, text, data_json, std::move(done));
  }
  int room_history(std::string_view room, uint64_t before, int limit, RoomDone done) override {
    return rooms_->plugin_history(room, before, limit, std::move(done));
  }
  int room_members(std::string_view room, std::string* json) override {
    return rooms_->plugin_members(room, json);
  }

 private:
  uv_loop_t loop_;
  std::string dir_;
  std::unique_ptr<TokenVerifier> verifier_;
  std::unique_ptr<Key> key_;
  std::unique_ptr<ReplayCache> replay_;
  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<CountingStore> store_;
  std::unique_ptr<rooms::Rooms> rooms_;
  std::unique_ptr<PluginRuntime> plugins_;
  std::unique_ptr<net::WsConnection> conns_[kSessions];
  bool open_[kSessions] = {};
  uint64_t jti_ = 0;
};

}  // namespace hut::fuzz

#endif  // HUTOPIA_TEST_FUZZ_ROOMS_HARNESS_H_

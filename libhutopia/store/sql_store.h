// The part of a SQL store (SQLite or PostgreSQL) that is the same for both:
// every write and read of hut::Store queued to the executor (executor.h) as
// the SQL of sql.h on the connection type Conn. The database's own store
// derives from it and adds opening, load_state(), kv_get_now() and
// import_plugin_kv(). Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_SQL_STORE_H_
#define HUTOPIA_STORE_SQL_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "store/executor.h"
#include "store/sql_kv.h"
#include "store/sql_messages.h"
#include "store/sql_resume.h"
#include "store/sql_rooms.h"
#include "store/store.h"

namespace hut::store {

// Most messages in one history page.
inline constexpr int kMaxHistoryPage = 200;

// Posts queued one after the other, as one write: one statement for them
// all (sql::post_many), on a database whose WITH takes writes. They were
// queued in one loop turn, or in turns while the writer was busy. Each post
// keeps its own result and callback. When the executor runs each write in a
// savepoint, the statement runs in a savepoint of its own too, and when it
// fails the posts run again one by one, so that a bad one fails alone.
template <typename Conn>
class PostsOp final : public Op {
 public:
  // The most posts in one statement.
  static constexpr size_t kMaxPosts = 1000;

  PostsOp(PostRequest req, Store::Callback<PostResult> cb) { add(std::move(req), std::move(cb)); }

  void run(WorkerConn& wc) override {
    Conn& c = static_cast<Conn&>(wc);
    broken_ = Status();
    if (reqs_.size() == 1 || !c.write_savepoints()) {
      // Alone, it fails as a write does (the executor isolates it). In a
      // batch run without savepoints, a failed statement has the batch run
      // again with them, and then the posts can fail one by one.
      Status st = sql::post_many(c, reqs_, &results_);
      if (!st.ok()) fail(st);
      return;
    }
    Status s = c.savepoint();
    if (s.ok()) {
      Status st = sql::post_many(c, reqs_, &results_);
      s = c.release(st.ok());
      for (size_t i = 0; s.ok() && !st.ok() && i < reqs_.size(); ++i) {
        s = c.savepoint();
        if (!s.ok()) break;
        results_[i] = sql::post(c, reqs_[i]);
        s = c.release(results_[i].ok());
      }
    }
    if (!s.ok()) fail(s);
  }
  // One post fails as a write does; several only when the connection did.
  bool failed() const override { return !broken_.ok() || (reqs_.size() == 1 && !results_[0].ok()); }
  void fail(Status s) override {
    broken_ = s;
    for (auto& r : results_) r = s;
  }
  void finish() override {
    for (size_t i = 0; i < reqs_.size(); ++i)
      if (cbs_[i]) cbs_[i](std::move(results_[i]));
  }
  bool absorb(std::unique_ptr<Op>& next) override {
    auto* more = dynamic_cast<PostsOp*>(next.get());
    if (more == nullptr || reqs_.size() + more->reqs_.size() > kMaxPosts) return false;
    for (size_t i = 0; i < more->reqs_.size(); ++i) add(std::move(more->reqs_[i]), std::move(more->cbs_[i]));
    next.reset();
    return true;
  }
  size_t weight() const override { return reqs_.size(); }

 private:
  void add(PostRequest req, Store::Callback<PostResult> cb) {
    reqs_.push_back(std::move(req));
    cbs_.push_back(std::move(cb));
    results_.emplace_back(Status::internal("the store did not run this operation"));
  }

  std::vector<PostRequest> reqs_;
  std::vector<Store::Callback<PostResult>> cbs_;
  std::vector<Result<PostResult>> results_;
  Status broken_;
};

// Methods run on the loop thread; each queues its SQL to the executor.
template <typename Conn>
class SqlStore : public Store {
 public:
  SqlStore(uv_loop_t* loop, size_t max_batch) : executor_(loop, max_batch) {}

  // --- Writes ---

  void put_user(UserRecord user, DoneCallback done) override {
    write([user = std::move(user)](Conn& c) { return sql::put_user(c, user); }, std::move(done));
  }

  void create_room(RoomRecord room, std::vector<MemberRecord> members, DoneCallback done) override {
    write([room = std::move(room),
           members = std::move(members)](Conn& c) { return sql::create_room(c, room, members); },
          std::move(done));
  }

  void delete_room(std::string room, DoneCallback done) override {
    write([room = std::move(room)](Conn& c) { return sql::delete_room(c, room); }, std::move(done));
  }

  void open_dm(UserRecord a, UserRecord b, std::string new_room_id, int64_t ts,
               Callback<DmResult> done) override {
    executor_.write<DmResult, Conn>([a = std::move(a), b = std::move(b), id = std::move(new_room_id),
                                     ts](Conn& c) { return sql::open_dm(c, a, b, id, ts); },
                                    std::move(done));
  }

  void set_topic(std::string room, std::string topic, DoneCallback done) override {
    write([room = std::move(room),
           topic = std::move(topic)](Conn& c) { return sql::set_topic(c, room, topic); },
          std::move(done));
  }

  void set_mute_all(std::string room, bool on, DoneCallback done) override {
    write([room = std::move(room), on](Conn& c) { return sql::set_mute_all(c, room, on); }, std::move(done));
  }

  void put_member(MemberRecord member, DoneCallback done) override {
    write([member = std::move(member)](Conn& c) { return sql::put_member(c, member); }, std::move(done));
  }

  void remove_member(std::string room, std::string user, DoneCallback done) override {
    write([room = std::move(room),
           user = std::move(user)](Conn& c) { return sql::remove_member(c, room, user); },
          std::move(done));
  }

  void set_ban(std::string room, std::string user, bool banned, DoneCallback done) override {
    write([room = std::move(room), user = std::move(user),
           banned](Conn& c) { return sql::set_ban(c, room, user, banned); },
          std::move(done));
  }

  void set_role(std::string room, std::string user, Role role, DoneCallback done) override {
    write([room = std::move(room), user = std::move(user),
           role](Conn& c) { return sql::set_role(c, room, user, role); },
          std::move(done));
  }

  void set_mute(std::string room, std::string user, std::optional<int64_t> until,
                DoneCallback done) override {
    write([room = std::move(room), user = std::move(user),
           until](Conn& c) { return sql::set_mute(c, room, user, until); },
          std::move(done));
  }

  void post(PostRequest request, Callback<PostResult> done) override {
    if constexpr (Conn::kWritesInWith) {
      executor_.write_op(std::make_unique<PostsOp<Conn>>(std::move(request), std::move(done)));
      return;
    }
    executor_.write<PostResult, Conn>([req = std::move(request)](Conn& c) { return sql::post(c, req); },
                                      std::move(done));
  }

  void edit(std::string room, uint64_t seq, std::string text, int64_t edited_ts, std::string author,
            Callback<int64_t> done) override {
    executor_.write<int64_t, Conn>(
        [room = std::move(room), seq, text = std::move(text), edited_ts,
         author = std::move(author)](Conn& c) { return sql::edit(c, room, seq, text, edited_ts, author); },
        std::move(done));
  }

  void delete_message(std::string room, uint64_t seq, std::string author, DoneCallback done) override {
    write([room = std::move(room), seq,
           author = std::move(author)](Conn& c) { return sql::delete_message(c, room, seq, author); },
          std::move(done));
  }

  void mark_read(std::string room, std::string user, uint64_t seq, Callback<uint64_t> done) override {
    executor_.write<uint64_t, Conn>([room = std::move(room), user = std::move(user),
                                     seq](Conn& c) { return sql::mark_read(c, room, user, seq); },
                                    std::move(done));
  }

  void kv_put(std::string plugin, std::string key, std::string value, DoneCallback done) override {
    write([plugin = std::move(plugin), key = std::move(key),
           value = std::move(value)](Conn& c) { return sql::kv_put(c, plugin, key, value); },
          std::move(done));
  }

  void kv_delete(std::string plugin, std::string key, DoneCallback done) override {
    write([plugin = std::move(plugin),
           key = std::move(key)](Conn& c) { return sql::kv_delete(c, plugin, key); },
          std::move(done));
  }

  void put_resume(std::string hash, UserRecord user, int64_t expires_ts, DoneCallback done) override {
    write([hash = std::move(hash), user = std::move(user),
           expires_ts](Conn& c) { return sql::put_resume(c, hash, user, expires_ts); },
          std::move(done));
  }

  void redeem_resume(std::string hash, int64_t now, std::string new_hash, int64_t new_expires_ts,
                     Callback<UserRecord> done) override {
    executor_.write<UserRecord, Conn>(
        [hash = std::move(hash), now, new_hash = std::move(new_hash), new_expires_ts](Conn& c) {
          return sql::redeem_resume(c, hash, now, new_hash, new_expires_ts);
        },
        std::move(done));
  }

  // --- Reads ---

  void history(std::string room, uint64_t before_seq, int limit, Callback<HistoryPage> done) override {
    page(std::move(room), before_seq, limit, false, std::move(done));
  }

  void history_after(std::string room, uint64_t after_seq, int limit, Callback<HistoryPage> done) override {
    page(std::move(room), after_seq, limit, true, std::move(done));
  }

  void get_message(std::string room, uint64_t seq, Callback<MessageRecord> done) override {
    executor_.read<MessageRecord, Conn>(
        [room = std::move(room), seq](Conn& c) { return sql::get_message(c, room, seq); }, std::move(done));
  }

  void list_rooms(Callback<std::vector<RoomRecord>> done) override {
    executor_.read<std::vector<RoomRecord>, Conn>([](Conn& c) { return sql::list_rooms(c); },
                                                  std::move(done));
  }

  void get_room(std::string room, Callback<RoomRecord> done) override {
    executor_.read<RoomRecord, Conn>([room = std::move(room)](Conn& c) { return sql::get_room(c, room); },
                                     std::move(done));
  }

  void members(std::string room, Callback<std::vector<MemberRecord>> done) override {
    executor_.read<std::vector<MemberRecord>, Conn>(
        [room = std::move(room)](Conn& c) { return sql::members(c, room); }, std::move(done));
  }

  void member(std::string room, std::string user, Callback<MemberRecord> done) override {
    executor_.read<MemberRecord, Conn>(
        [room = std::move(room), user = std::move(user)](Conn& c) { return sql::member(c, room, user); },
        std::move(done));
  }

  void sanctions(std::string room, Callback<std::vector<SanctionRecord>> done) override {
    executor_.read<std::vector<SanctionRecord>, Conn>(
        [room = std::move(room)](Conn& c) { return sql::sanctions(c, room); }, std::move(done));
  }

  void read_markers(std::string room, Callback<std::vector<ReadMarker>> done) override {
    executor_.read<std::vector<ReadMarker>, Conn>(
        [room = std::move(room)](Conn& c) { return sql::read_markers(c, room); }, std::move(done));
  }

  void unread(std::string room, std::string user, Callback<uint64_t> done) override {
    executor_.read<uint64_t, Conn>(
        [room = std::move(room), user = std::move(user)](Conn& c) { return sql::unread(c, room, user); },
        std::move(done));
  }

  void unread_counts(std::string user, Callback<std::vector<RoomUnread>> done) override {
    executor_.read<std::vector<RoomUnread>, Conn>(
        [user = std::move(user)](Conn& c) { return sql::unread_counts(c, user); }, std::move(done));
  }

  void kv_get(std::string plugin, std::string key, Callback<std::string> done) override {
    executor_.read<std::string, Conn>(
        [plugin = std::move(plugin), key = std::move(key)](Conn& c) { return sql::kv_get(c, plugin, key); },
        std::move(done));
  }

  void close(std::function<void()> done) override { executor_.close(std::move(done)); }

  const Histogram* commit_seconds() const override { return executor_.commit_seconds(); }
  StoreStats stats() const override { return executor_.stats(); }

 protected:
  Status start(std::unique_ptr<Conn> writer, std::unique_ptr<Conn> reader,
               std::unique_ptr<Conn> maintenance) {
    return executor_.start(std::move(writer), std::move(reader), std::move(maintenance));
  }

  // A write whose result is only its status.
  void write(std::function<Result<sql::Unit>(Conn&)> fn, DoneCallback done) {
    std::function<void(Result<sql::Unit>)> cb;
    if (done) cb = [done = std::move(done)](Result<sql::Unit> r) { done(r.status()); };
    executor_.write<sql::Unit, Conn>(std::move(fn), std::move(cb));
  }

  void page(std::string room, uint64_t cursor, int limit, bool forward, Callback<HistoryPage> done) {
    if (limit < 1 || limit > kMaxHistoryPage) {
      executor_.reject<HistoryPage>(Status::invalid_argument("history limit must be 1..200"),
                                    std::move(done));
      return;
    }
    executor_.read<HistoryPage, Conn>([room = std::move(room), cursor, limit, forward](
                                          Conn& c) { return sql::history(c, room, cursor, limit, forward); },
                                      std::move(done));
  }

  Executor executor_;
};

}  // namespace hut::store

#endif  // HUTOPIA_STORE_SQL_STORE_H_

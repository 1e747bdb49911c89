#include "store/sqlite_executor.h"

#include <sqlite3.h>

#include <chrono>

#include "util/log.h"

namespace hut::sqlite {
namespace {

// The WAL size (in pages) past which the checkpoint thread is woken (SQLite's
// own default), and the size past which the writer checkpoints by itself.
// Under a steady stream of commits the checkpoint thread never catches up with
// the last frame, so the WAL would never start over and would keep growing;
// the writer's own checkpoint finds most frames copied already, and the WAL
// starts over at its next transaction.
constexpr int kCheckpointFrames = 1000;
constexpr int kInlineCheckpointFrames = 4000;
// The checkpoint thread's pause between two checkpoints.
constexpr auto kCheckpointPause = std::chrono::milliseconds(50);

void raise_to(std::atomic<uint64_t>& max, uint64_t value) {
  uint64_t prev = max.load();
  while (value > prev && !max.compare_exchange_weak(prev, value)) {
  }
}

}  // namespace

Executor::~Executor() {
  if (!threads_joined_) {
    stop_workers();
    join_threads();
  }
  if (async_ != nullptr) {
    // The handle outlives the executor until the loop runs its close callback.
    async_->data = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(async_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(async_), on_async_closed);
    }
  }
}

Status Executor::start(std::unique_ptr<Conn> writer, std::unique_ptr<Conn> reader,
                       std::unique_ptr<Conn> checkpointer) {
  async_ = new uv_async_t;
  int rc = uv_async_init(loop_, async_, [](uv_async_t* h) {
    if (h->data) static_cast<Executor*>(h->data)->on_async();
  });
  if (rc != 0) {
    delete async_;
    async_ = nullptr;
    return Status::internal(std::string("uv_async_init: ") + uv_strerror(rc));
  }
  async_->data = this;
  writer_.conn = std::move(writer);
  reader_.conn = std::move(reader);
  writer_.thread = std::thread([this] { writer_main(); });
  reader_.thread = std::thread([this] { reader_main(); });
  checkpointer_.conn = std::move(checkpointer);
  checkpointer_.thread = std::thread([this] { checkpointer_main(); });
  return Status();
}

void Executor::queue(std::unique_ptr<Op> op, bool write) {
  if (closing_) {
    reject_closed(std::move(op));
    return;
  }
  if (write) pending_writes_.fetch_add(1);
  Worker& w = write ? writer_ : reader_;
  std::lock_guard lock(w.mu);
  w.queue.push_back(std::move(op));
  w.cv.notify_one();
}

void Executor::reject_closed(std::unique_ptr<Op> op) {
  op->fail(Status::failed_precondition("the store is closed"));
  complete_later(std::move(op));
}

// Runs op->finish() on the loop thread, from the loop; directly once the
// executor is closed (there is no handle left to wake the loop).
void Executor::complete_later(std::unique_ptr<Op> op) {
  if (closed_) {
    op->finish();
    return;
  }
  {
    std::lock_guard lock(done_mu_);
    done_.push_back(std::move(op));
  }
  uv_async_send(async_);
}

// Worker threads hand finished operations to the loop thread here.
void Executor::hand_back(std::vector<std::unique_ptr<Op>>& ops, bool writes) {
  {
    std::lock_guard lock(done_mu_);
    for (auto& op : ops) done_.push_back(std::move(op));
    if (writes) done_writes_ += ops.size();
  }
  ops.clear();
  uv_async_send(async_);
}

void Executor::writer_main() {
  Conn& c = *writer_.conn;
  std::vector<std::unique_ptr<Op>> batch;
  for (;;) {
    {
      std::unique_lock lock(writer_.mu);
      writer_.cv.wait(lock, [&] { return writer_.stop || !writer_.queue.empty(); });
      if (writer_.queue.empty()) break;
      while (!writer_.queue.empty() && batch.size() < max_batch_) {
        batch.push_back(std::move(writer_.queue.front()));
        writer_.queue.pop_front();
      }
    }
    uint64_t start = uv_hrtime();
    run_batch(c, batch);
    uint64_t took = uv_hrtime() - start;
    raise_to(slowest_commit_us_, took / 1000);
    commit_seconds_.observe_ns(took);
    hand_back(batch, true);
    if (c.wal_frames >= kInlineCheckpointFrames) {
      // PASSIVE: copies what no reader still needs, never waits for one.
      start = uv_hrtime();
      sqlite3_wal_checkpoint_v2(c.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      raise_to(slowest_writer_checkpoint_us_, (uv_hrtime() - start) / 1000);
      c.wal_frames = 0;
    } else if (c.wal_frames >= kCheckpointFrames) {
      std::lock_guard lock(checkpointer_.mu);
      checkpoint_wanted_ = true;
      checkpointer_.cv.notify_one();
    }
  }
  finish_thread(writer_exited_);
}

// Runs every write of the batch in one transaction, each inside a savepoint
// so that one failing write leaves the others in.
void Executor::run_batch(Conn& c, std::vector<std::unique_ptr<Op>>& batch) {
  Status s = SqliteQuery(c, "BEGIN IMMEDIATE").run();
  if (!s.ok()) {
    fail_batch(c, batch, s);
    return;
  }
  for (auto& op : batch) {
    s = SqliteQuery(c, "SAVEPOINT w").run();
    if (!s.ok()) break;
    op->run(c);
    if (!c.in_transaction()) {
      // SQLite rolled the whole transaction back (disk full, I/O error).
      s = Status::io_error(std::string("store: the transaction was rolled back: ") + sqlite3_errmsg(c.db()));
      break;
    }
    if (op->failed()) {
      c.clear_caches();
      s = SqliteQuery(c, "ROLLBACK TO w").run();
      if (s.ok()) s = SqliteQuery(c, "RELEASE w").run();
    } else {
      s = SqliteQuery(c, "RELEASE w").run();
    }
    if (!s.ok()) break;
  }
  if (s.ok()) s = SqliteQuery(c, "COMMIT").run();
  if (!s.ok()) {
    fail_batch(c, batch, s);
    return;
  }
  commits_.fetch_add(1);
  writes_.fetch_add(batch.size());
  raise_to(largest_batch_, batch.size());
}

void Executor::fail_batch(Conn& c, std::vector<std::unique_ptr<Op>>& batch, const Status& s) {
  c.rollback_if_open();
  c.clear_caches();
  failed_commits_.fetch_add(1);
  log_printf(LogLevel::kError, "store", "a write transaction of %zu writes failed: %s", batch.size(),
             s.to_string().c_str());
  for (auto& op : batch) op->fail(s);
}

void Executor::reader_main() {
  Conn& c = *reader_.conn;
  std::vector<std::unique_ptr<Op>> done;
  for (;;) {
    std::unique_ptr<Op> op;
    {
      std::unique_lock lock(reader_.mu);
      reader_.cv.wait(lock, [&] { return reader_.stop || !reader_.queue.empty(); });
      if (reader_.queue.empty()) break;
      op = std::move(reader_.queue.front());
      reader_.queue.pop_front();
    }
    // One read transaction: the statements of one read see one snapshot.
    {
      SqliteTransaction txn(c);
      Status s = txn.begin();
      if (s.ok()) {
        op->run(c);
        s = txn.commit();
      }
      if (!s.ok()) op->fail(s);
    }
    done.push_back(std::move(op));
    hand_back(done, false);
  }
  finish_thread(reader_exited_);
}

// Copies the WAL into the database file whenever the writer asks, so that
// neither a commit nor the acknowledgements after it wait for a checkpoint.
void Executor::checkpointer_main() {
  Conn& c = *checkpointer_.conn;
  std::unique_lock lock(checkpointer_.mu);
  for (;;) {
    checkpointer_.cv.wait(lock, [&] { return checkpointer_.stop || checkpoint_wanted_; });
    if (checkpointer_.stop) break;
    checkpoint_wanted_ = false;
    lock.unlock();
    // PASSIVE: copies what no reader still needs, never waits for one.
    sqlite3_wal_checkpoint_v2(c.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    lock.lock();
    checkpointer_.cv.wait_for(lock, kCheckpointPause, [&] { return checkpointer_.stop; });
  }
}

void Executor::finish_thread(bool& exited) {
  {
    std::lock_guard lock(done_mu_);
    exited = true;
  }
  uv_async_send(async_);
}

// Loop thread: runs the callbacks of finished operations in order, and
// finishes close() once both threads are done.
void Executor::on_async() {
  for (;;) {
    std::deque<std::unique_ptr<Op>> ready;
    bool both_exited = false;
    size_t writes_done = 0;
    {
      std::lock_guard lock(done_mu_);
      ready.swap(done_);
      writes_done = done_writes_;
      done_writes_ = 0;
      both_exited = writer_exited_ && reader_exited_;
    }
    pending_writes_.fetch_sub(writes_done);
    for (auto& op : ready) op->finish();
    if (!ready.empty()) continue;  // callbacks may have queued more
    if (both_exited && closing_ && !closed_) {
      join_threads();
      closed_ = true;
      uv_close(reinterpret_cast<uv_handle_t*>(async_), on_async_closed);
    }
    return;
  }
}

// Frees the handle, then finishes close() unless the executor is gone.
void Executor::on_async_closed(uv_handle_t* h) {
  auto* self = static_cast<Executor*>(h->data);
  delete reinterpret_cast<uv_async_t*>(h);
  if (self == nullptr) return;
  self->async_ = nullptr;
  auto cb = std::move(self->close_cb_);
  if (cb) cb();
}

void Executor::stop_workers() {
  for (Worker* w : {&writer_, &reader_}) {
    std::lock_guard lock(w->mu);
    w->stop = true;
    w->cv.notify_all();
  }
}

void Executor::join_threads() {
  if (writer_.thread.joinable()) writer_.thread.join();
  if (reader_.thread.joinable()) reader_.thread.join();
  {
    std::lock_guard lock(checkpointer_.mu);
    checkpointer_.stop = true;
    checkpointer_.cv.notify_all();
  }
  if (checkpointer_.thread.joinable()) checkpointer_.thread.join();
  checkpointer_.conn.reset();
  writer_.conn.reset();
  reader_.conn.reset();
  threads_joined_ = true;
}

void Executor::close(std::function<void()> done) {
  if (closing_ && async_ == nullptr) {
    if (done) done();  // closed already
    return;
  }
  if (closing_) {
    // A second close: its callback runs after the first one's.
    auto first = std::move(close_cb_);
    close_cb_ = [first = std::move(first), done = std::move(done)] {
      if (first) first();
      if (done) done();
    };
    return;
  }
  closing_ = true;
  close_cb_ = std::move(done);
  stop_workers();
}

StoreStats Executor::stats() const {
  StoreStats s;
  s.commits = commits_.load();
  s.writes = writes_.load();
  s.failed_commits = failed_commits_.load();
  s.largest_batch = largest_batch_.load();
  s.slowest_commit_us = slowest_commit_us_.load();
  s.slowest_writer_checkpoint_us = slowest_writer_checkpoint_us_.load();
  s.pending_writes = pending_writes_.load();
  return s;
}

}  // namespace hut::sqlite

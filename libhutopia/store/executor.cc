#include "store/executor.h"

#include <chrono>

#include "util/log.h"

namespace hut::store {
namespace {

// The maintenance thread's pause between two runs.
constexpr auto kMaintenancePause = std::chrono::milliseconds(50);
// How often a batch that failed with a retryable error runs again.
constexpr int kBatchAttempts = 5;

void raise_to(std::atomic<uint64_t>& max, uint64_t value) {
  uint64_t prev = max.load();
  while (value > prev && !max.compare_exchange_weak(prev, value)) {
  }
}

void close_idle(uv_idle_t*& idle) {
  if (idle == nullptr) return;
  uv_idle_stop(idle);
  uv_close(reinterpret_cast<uv_handle_t*>(idle),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
  idle = nullptr;
}

}  // namespace

Executor::~Executor() {
  if (!threads_joined_) {
    hand_over_staged();
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
  close_idle(turn_end_);
}

Status Executor::start(std::unique_ptr<WorkerConn> writer, std::unique_ptr<WorkerConn> reader,
                       std::unique_ptr<WorkerConn> maintenance) {
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
  turn_end_ = new uv_idle_t;
  uv_idle_init(loop_, turn_end_);
  turn_end_->data = this;
  writer_.conn = std::move(writer);
  reader_.conn = std::move(reader);
  writer_.thread = std::thread([this] { writer_main(); });
  reader_.thread = std::thread([this] { reader_main(); });
  maintenance_.conn = std::move(maintenance);
  if (maintenance_.conn) maintenance_.thread = std::thread([this] { maintenance_main(); });
  return Status();
}

void Executor::queue(std::unique_ptr<Op> op, bool write) {
  if (closing_) {
    reject_closed(std::move(op));
    return;
  }
  if (write) pending_writes_.fetch_add(1);
  if (write && turn_end_ != nullptr) {
    // An active idle handle also keeps the next poll from blocking when the
    // write was queued outside the poll phase (a timer).
    if (staged_.empty())
      uv_idle_start(turn_end_, [](uv_idle_t* h) { static_cast<Executor*>(h->data)->hand_over_staged(); });
    if (!staged_.empty() && staged_.back()->absorb(op)) return;
    staged_.push_back(std::move(op));
    return;
  }
  Worker& w = write ? writer_ : reader_;
  std::lock_guard lock(w.mu);
  w.queue.push_back(std::move(op));
  w.cv.notify_one();
}

void Executor::hand_over_staged() {
  if (staged_.empty()) return;
  uv_idle_stop(turn_end_);
  std::lock_guard lock(writer_.mu);
  // Writes of earlier turns still waiting for the writer may take these in
  // too (posts read one per turn while a commit was under way).
  for (auto& op : staged_) {
    if (!writer_.queue.empty() && writer_.queue.back()->absorb(op)) continue;
    writer_.queue.push_back(std::move(op));
  }
  staged_.clear();
  writer_.cv.notify_one();
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
    for (auto& op : ops) {
      if (writes) done_writes_ += op->weight();
      done_.push_back(std::move(op));
    }
  }
  ops.clear();
  uv_async_send(async_);
}

void Executor::writer_main() {
  WorkerConn& c = *writer_.conn;
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
    bool wake = false;
    raise_to(slowest_writer_checkpoint_us_, c.after_batch(&wake));
    if (wake && maintenance_.conn) {
      std::lock_guard lock(maintenance_.mu);
      maintenance_wanted_ = true;
      maintenance_.cv.notify_one();
    }
  }
  finish_thread(writer_exited_);
}

// Runs every write of the batch in one transaction, each inside a savepoint
// so that one failing write leaves the others in (where savepoints cost a
// round trip, the batch runs first without them; see cheap_savepoints()). A
// batch that failed with an error the connection calls retryable runs again,
// a few times.
void Executor::run_batch(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch) {
  Status s;
  for (int attempt = 1; attempt <= kBatchAttempts; ++attempt) {
    bool write_failed = true;
    if (!c.cheap_savepoints()) s = try_batch_whole(c, batch, &write_failed);
    if (write_failed) s = try_batch(c, batch);
    if (s.ok() || !c.retryable(s)) break;
    c.abandon();
  }
  if (!s.ok()) {
    fail_batch(c, batch, s);
    return;
  }
  uint64_t writes = 0;
  for (const auto& op : batch) writes += op->weight();
  commits_.fetch_add(1);
  writes_.fetch_add(writes);
  raise_to(largest_batch_, writes);
}

Status Executor::try_batch(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch) {
  HUT_RETURN_IF_ERROR(c.begin_batch());
  for (auto& op : batch) {
    HUT_RETURN_IF_ERROR(c.savepoint());
    op->run(c);
    HUT_RETURN_IF_ERROR(c.still_open());
    HUT_RETURN_IF_ERROR(c.release(!op->failed()));
  }
  return c.commit();
}

// The batch in one transaction without savepoints. When a write fails, the
// transaction is rolled back (taking the writes before it along) and
// *write_failed is set, for the caller to run the batch again with a
// savepoint per write. Writes may run again: nothing of theirs reaches the
// loop before the batch is handed back.
Status Executor::try_batch_whole(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch, bool* write_failed) {
  *write_failed = false;
  HUT_RETURN_IF_ERROR(c.begin_batch());
  c.write_savepoints_ = false;
  for (auto& op : batch) {
    op->run(c);
    if (op->failed()) {
      *write_failed = true;
      break;
    }
  }
  c.write_savepoints_ = true;
  if (*write_failed) {
    c.abandon();
    return Status();
  }
  return c.commit();
}

void Executor::fail_batch(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch, const Status& s) {
  c.abandon();
  failed_commits_.fetch_add(1);
  log_printf(LogLevel::kError, "store", "a write transaction of %zu writes failed: %s", batch.size(),
             s.to_string().c_str());
  for (auto& op : batch) op->fail(s);
}

void Executor::reader_main() {
  WorkerConn& c = *reader_.conn;
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
    Status s = c.begin_read();
    if (s.ok()) {
      op->run(c);
      s = c.end_read();
    }
    if (!s.ok()) {
      op->fail(s);
      c.abandon();
    }
    done.push_back(std::move(op));
    hand_back(done, false);
  }
  finish_thread(reader_exited_);
}

// Runs the connection's maintenance whenever the writer asks (SQLite: copies
// the WAL into the database file), so that neither a commit nor the
// acknowledgements after it wait for it.
void Executor::maintenance_main() {
  WorkerConn& c = *maintenance_.conn;
  std::unique_lock lock(maintenance_.mu);
  for (;;) {
    maintenance_.cv.wait(lock, [&] { return maintenance_.stop || maintenance_wanted_; });
    if (maintenance_.stop) break;
    maintenance_wanted_ = false;
    lock.unlock();
    c.maintain();
    lock.lock();
    maintenance_.cv.wait_for(lock, kMaintenancePause, [&] { return maintenance_.stop; });
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
      close_idle(turn_end_);
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
    std::lock_guard lock(maintenance_.mu);
    maintenance_.stop = true;
    maintenance_.cv.notify_all();
  }
  if (maintenance_.thread.joinable()) maintenance_.thread.join();
  maintenance_.conn.reset();
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
  hand_over_staged();  // the writer drains its queue before it stops
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

}  // namespace hut::store

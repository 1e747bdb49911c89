// The threads of a SQL store (SQLite or PostgreSQL) and the way operations
// reach them: one writer thread that runs queued writes in group commits (one
// transaction, a savepoint per write where savepoints are cheap), one reader
// thread with a connection of its own, an optional maintenance thread
// (SQLite's checkpoints), and a uv_async_t that brings every finished
// operation back to the loop thread, in order, to run its callback. Writes
// wait on the loop until the end of the loop turn that queued them (a
// uv_idle_t) and then go to the writer all together, so that one batch holds
// every write of a turn (all the welcomes or posts of the frames read in one
// poll). What differs between databases is behind WorkerConn. Internal to
// libhutopia/store.
//
// Thread: write(), read(), reject(), close() and the callbacks on the loop
// thread; the operations' functions on the writer or reader thread.
#ifndef HUTOPIA_STORE_EXECUTOR_H_
#define HUTOPIA_STORE_EXECUTOR_H_

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store/store.h"

namespace hut::store {

// A worker thread's connection as the executor drives it.
class WorkerConn {
 public:
  virtual ~WorkerConn() = default;
  // A write transaction of one batch, each write inside a savepoint.
  virtual Status begin_batch() = 0;
  virtual Status savepoint() = 0;
  // Ends the write's savepoint, keeping the write or undoing it.
  virtual Status release(bool keep) = 0;
  // False when a savepoint costs about as much as a write (a round trip to a
  // server): a batch then runs first without them, and again with one per
  // write only when a write in it failed.
  virtual bool cheap_savepoints() const { return true; }
  // False while a batch runs without savepoints (see cheap_savepoints()):
  // a write that fails then only has to say so, for the whole batch runs
  // again; true while each write runs inside a savepoint of its own.
  bool write_savepoints() const { return write_savepoints_; }
  // After a write: an error when the database dropped the whole transaction.
  virtual Status still_open() = 0;
  virtual Status commit() = 0;
  // Rolls back what is open and forgets what the transaction may have undone.
  virtual void abandon() = 0;
  // True when a batch that failed with `s` may run again as a whole (a
  // deadlock or serialization failure between processes).
  virtual bool retryable(const Status& s) const {
    (void)s;
    return false;
  }
  // One read transaction.
  virtual Status begin_read() = 0;
  virtual Status end_read() = 0;
  // Writer thread, after a batch was handed back: work the database wants
  // now. The time it took inline, in microseconds; *wake_maintenance asks the
  // maintenance thread to run maintain() on its own connection.
  virtual uint64_t after_batch(bool* wake_maintenance) {
    *wake_maintenance = false;
    return 0;
  }
  virtual void maintain() {}

 private:
  friend class Executor;
  bool write_savepoints_ = true;
};

// An operation queued to a worker thread.
class Op {
 public:
  virtual ~Op() = default;
  virtual void run(WorkerConn& c) = 0;  // on a worker thread
  virtual bool failed() const = 0;      // after run() or fail()
  virtual void fail(Status s) = 0;      // replaces the result
  virtual void finish() = 0;            // on the loop thread, once
  // Loop thread, while this operation is the last one staged or the last
  // one queued to the writer and not yet taken: takes `next` into itself
  // (and returns true) when both can run as one, which keeps their order.
  // `next` is then empty.
  virtual bool absorb(std::unique_ptr<Op>& next) {
    (void)next;
    return false;
  }
  // The writes this operation stands for (more than one once it absorbed).
  virtual size_t weight() const { return 1; }
};

// An operation on the connections of type Conn (a WorkerConn).
template <typename T, typename Conn>
class FnOp final : public Op {
 public:
  FnOp(std::function<Result<T>(Conn&)> fn, std::function<void(Result<T>)> cb)
      : fn_(std::move(fn)), cb_(std::move(cb)) {}
  void run(WorkerConn& c) override { result_ = fn_(static_cast<Conn&>(c)); }
  bool failed() const override { return !result_.ok(); }
  void fail(Status s) override { result_ = std::move(s); }
  void finish() override {
    if (cb_) cb_(std::move(result_));
  }

 private:
  std::function<Result<T>(Conn&)> fn_;
  std::function<void(Result<T>)> cb_;
  Result<T> result_{Status::internal("the store did not run this operation")};
};

class Executor {
 public:
  Executor(uv_loop_t* loop, size_t max_batch) : loop_(loop), max_batch_(max_batch) {}
  // Joins the threads when close() did not finish; the async handle is freed
  // by the loop later.
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Starts the threads, each with its connection (all of one type); without
  // a maintenance connection there is no maintenance thread.
  Status start(std::unique_ptr<WorkerConn> writer, std::unique_ptr<WorkerConn> reader,
               std::unique_ptr<WorkerConn> maintenance);

  // Queues `fn` to the writer (write) or the reader (read); `cb` runs on the
  // loop thread with its result. Once closing, `cb` gets kFailedPrecondition.
  // Conn is the type of the connections start() was given.
  template <typename T, typename Conn>
  void write(std::function<Result<T>(Conn&)> fn, std::function<void(Result<T>)> cb) {
    queue(std::make_unique<FnOp<T, Conn>>(std::move(fn), std::move(cb)), true);
  }
  template <typename T, typename Conn>
  void read(std::function<Result<T>(Conn&)> fn, std::function<void(Result<T>)> cb) {
    queue(std::make_unique<FnOp<T, Conn>>(std::move(fn), std::move(cb)), false);
  }
  // Queues an operation of the store's own kind to the writer.
  void write_op(std::unique_ptr<Op> op) { queue(std::move(op), true); }
  // `cb` gets `status` from the loop, as if an operation had failed.
  template <typename T>
  void reject(Status status, std::function<void(Result<T>)> cb) {
    auto op = std::make_unique<FnOp<T, WorkerConn>>(nullptr, std::move(cb));
    op->fail(std::move(status));
    complete_later(std::move(op));
  }

  // Lets the queued operations finish, stops the threads, then runs `done`
  // from the loop. A second close's `done` runs after the first's.
  void close(std::function<void()> done);
  bool closing() const { return closing_; }

  const Histogram* commit_seconds() const { return &commit_seconds_; }
  StoreStats stats() const;

 private:
  // One worker thread with its queue and connection.
  struct Worker {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::unique_ptr<Op>> queue;  // guarded by mu
    bool stop = false;                      // guarded by mu
    std::unique_ptr<WorkerConn> conn;       // used by the thread only
    std::thread thread;
  };

  void queue(std::unique_ptr<Op> op, bool write);
  // Hands the staged writes to the writer thread: one lock, one wake-up.
  void hand_over_staged();
  void reject_closed(std::unique_ptr<Op> op);
  void complete_later(std::unique_ptr<Op> op);
  void hand_back(std::vector<std::unique_ptr<Op>>& ops, bool writes);
  void writer_main();
  void run_batch(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch);
  Status try_batch(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch);
  Status try_batch_whole(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch, bool* write_failed);
  void fail_batch(WorkerConn& c, std::vector<std::unique_ptr<Op>>& batch, const Status& s);
  void reader_main();
  void maintenance_main();
  void finish_thread(bool& exited);
  void on_async();
  static void on_async_closed(uv_handle_t* h);
  void stop_workers();
  void join_threads();

  uv_loop_t* loop_;
  size_t max_batch_;
  uv_async_t* async_ = nullptr;  // owned; freed by its close callback
  // Active while writes are staged; its callback hands them over. Owned;
  // freed by its close callback.
  uv_idle_t* turn_end_ = nullptr;
  std::deque<std::unique_ptr<Op>> staged_;  // loop thread only

  Worker writer_;
  Worker reader_;
  Worker maintenance_;               // its queue stays empty
  bool maintenance_wanted_ = false;  // guarded by maintenance_.mu

  std::mutex done_mu_;
  std::deque<std::unique_ptr<Op>> done_;  // guarded by done_mu_
  size_t done_writes_ = 0;                // guarded by done_mu_
  bool writer_exited_ = false;            // guarded by done_mu_
  bool reader_exited_ = false;            // guarded by done_mu_

  // Loop thread only.
  bool closing_ = false;
  bool closed_ = false;
  bool threads_joined_ = false;
  std::function<void()> close_cb_;

  Histogram commit_seconds_;
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> writes_{0};
  std::atomic<uint64_t> failed_commits_{0};
  std::atomic<uint64_t> largest_batch_{0};
  std::atomic<uint64_t> slowest_commit_us_{0};
  std::atomic<uint64_t> slowest_writer_checkpoint_us_{0};
  std::atomic<uint64_t> pending_writes_{0};
};

}  // namespace hut::store

#endif  // HUTOPIA_STORE_EXECUTOR_H_

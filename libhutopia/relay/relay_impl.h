// hut::Relay::Impl: the relay on the network layer. Every request is parsed
// on the loop thread and handed, as a copy, to libuv's thread pool
// (uv_queue_work), where routes.h answers it; the answer is sent from the
// loop thread once that work is done. So nothing slow or blocking runs on
// the loop, and every write is committed before its answer leaves.
// Requests that hash a password take at most [limits] hash_workers pool
// threads at once; up to hash_queue more wait, the rest get 503.
//
// Ownership: the Impl owns its NetServer and its RelayState; the loop is
// borrowed (or owned, see owned_loop). Threads: the loop thread, but for
// what the pool jobs reach through RelayState (relay_state.h).
#ifndef HUTOPIA_RELAY_RELAY_IMPL_H_
#define HUTOPIA_RELAY_RELAY_IMPL_H_

#include <hutopia/relay.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "net/server.h"
#include "relay/relay_state.h"

namespace hut {

struct Relay::Impl : net::NetHandler {
  Impl(RelayConfig config, uv_loop_t* loop) : state(std::move(config)), loop(loop) {}

  // net::NetHandler (HTTP only: NetOptions::websocket is off).
  void on_http(std::shared_ptr<net::HttpExchange> exchange) override;

  // GET /healthz, and GET /metrics with the admin token (loop thread).
  void handle_admin(const std::shared_ptr<net::HttpExchange>& ex);
  std::string metrics_text() const;
  void maybe_finish_stop();

  struct Job;
  // Hands a job to the thread pool; false when libuv refused it.
  bool submit(Job* job);
  // Starts waiting password-hash jobs while fewer than hash_workers run.
  void start_waiting_hash_jobs();
  static void run_job(uv_work_t* work);
  static void after_job(uv_work_t* work, int status);

  relay::RelayState state;
  uv_loop_t* loop;
  std::unique_ptr<uv_loop_t> owned_loop;  // set when the relay made its loop
  std::unique_ptr<net::NetServer> net;
  std::string host;
  int port = 0;
  std::string admin_host;
  int admin_port = 0;
  size_t pending = 0;  // jobs waiting, queued or running
  size_t hash_running = 0;
  std::deque<Job*> hash_waiting;
  bool started = false;
  bool stopping = false;
  bool net_down = false;
  bool stopped = false;
  std::function<void()> stop_done;
};

}  // namespace hut

#endif  // HUTOPIA_RELAY_RELAY_IMPL_H_

// One connection to Redis on the loop, through hiredis' asynchronous API and
// its libuv adapter: connects, reconnects with a doubling wait after every
// loss, runs commands and (on a link used for it) receives the messages of
// one subscribed channel, subscribing again after each reconnect.
//
// Thread: the loop thread only.
// Ownership: the link owns its hiredis context (which owns its poll handle)
// and its retry timer; the context ends on a loss (hiredis frees it) or with
// the link. Callbacks never run after the link is gone: commands still
// waiting when it goes end without their callback.
#ifndef HUTOPIA_CLUSTER_REDIS_LINK_H_
#define HUTOPIA_CLUSTER_REDIS_LINK_H_

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "util/url.h"

struct redisAsyncContext;
struct redisReply;

namespace hut::cluster {

class RedisLink {
 public:
  struct Options {
    RedisAddress address;
    int64_t backoff_min_ms = 100;
    int64_t backoff_max_ms = 5000;
    std::string name;       // for the log: "commands", "subscriber"
    std::string subscribe;  // a channel to subscribe to on every connect; empty: none
  };
  // `up` when the link becomes usable (connected, and subscribed if it
  // subscribes) and when it loses that. `message` gets each publication of
  // the subscribed channel.
  struct Handlers {
    std::function<void(bool up)> state;
    std::function<void(std::string_view payload)> message;
  };
  // The reply, or nullptr when none came (the connection was lost).
  using Reply = std::function<void(const redisReply* reply)>;

  RedisLink(uv_loop_t* loop, Options options, Handlers handlers);
  ~RedisLink();
  RedisLink(const RedisLink&) = delete;
  RedisLink& operator=(const RedisLink&) = delete;

  void start();
  bool up() const { return up_; }
  // Sends a command (its arguments, binary safe). False, without calling
  // `done`, when the link is not up or hiredis refused it.
  bool command(const std::vector<std::string>& args, Reply done);
  // Drops the connection (and connects again) when the oldest command has
  // waited longer than `timeout_ms` for its reply: a connection can die
  // without hiredis noticing (libuv reports a socket error to its adapter,
  // which drops it), and the commands waiting on it then end with no reply.
  void check_stalled(int64_t timeout_ms);
  // Drops the connection now (its commands end with no reply) and connects
  // again. Not from inside a Reply or a Handlers function.
  void drop(std::string_view why);

 private:
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  static void on_subscribed(redisAsyncContext* ac, void* reply, void* privdata);
  void connect();
  void lost(std::string_view why);
  void set_up(bool up);

  uv_loop_t* loop_;
  Options options_;
  Handlers handlers_;
  redisAsyncContext* ctx_ = nullptr;
  bool connected_ = false;
  bool up_ = false;
  bool closing_ = false;
  int64_t backoff_ms_;
  std::deque<uint64_t> sent_ms_;  // when each command waiting for its reply was sent
  uv_timer_t* retry_ = nullptr;   // heap, freed by its close callback
};

}  // namespace hut::cluster

#endif  // HUTOPIA_CLUSTER_REDIS_LINK_H_

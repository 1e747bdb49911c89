#include "cluster/redis_link.h"

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>

#include "util/clock.h"
#include "util/log.h"

namespace hut::cluster {
namespace {

// What a command's callback carries: the link that sent it and the caller's
// function. Freed by the callback, which hiredis calls once for each command
// (with no reply when the connection goes).
struct Pending {
  RedisLink* link;
  RedisLink::Reply done;
};

}  // namespace

RedisLink::RedisLink(uv_loop_t* loop, Options options, Handlers handlers)
    : loop_(loop),
      options_(std::move(options)),
      handlers_(std::move(handlers)),
      backoff_ms_(options_.backoff_min_ms) {
  retry_ = new uv_timer_t;
  uv_timer_init(loop_, retry_);
  retry_->data = this;
}

RedisLink::~RedisLink() {
  closing_ = true;
  if (ctx_ != nullptr) {
    redisAsyncContext* ac = ctx_;
    ctx_ = nullptr;
    ac->data = nullptr;
    redisAsyncFree(ac);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(retry_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void RedisLink::start() { connect(); }

void RedisLink::set_up(bool up) {
  if (up == up_) return;
  up_ = up;
  if (handlers_.state) handlers_.state(up);
}

void RedisLink::connect() {
  if (closing_ || ctx_ != nullptr) return;
  const RedisAddress& a = options_.address;
  redisAsyncContext* ac = a.unix_path.empty() ? redisAsyncConnect(a.host.c_str(), a.port)
                                              : redisAsyncConnectUnix(a.unix_path.c_str());
  if (ac == nullptr) {
    lost("out of memory");
    return;
  }
  if (ac->err != 0) {
    std::string why = ac->errstr;
    redisAsyncFree(ac);
    lost(why);
    return;
  }
  if (redisLibuvAttach(ac, loop_) != REDIS_OK) {
    redisAsyncFree(ac);
    lost("cannot watch the socket");
    return;
  }
  ac->data = this;
  redisAsyncSetConnectCallback(ac, &RedisLink::on_connect);
  redisAsyncSetDisconnectCallback(ac, &RedisLink::on_disconnect);
  ctx_ = ac;
}

void RedisLink::lost(std::string_view why) {
  bool was = connected_;
  sent_ms_.clear();
  ctx_ = nullptr;
  connected_ = false;
  set_up(false);
  if (closing_) return;
  if (was)
    log_write(LogLevel::kWarn, "cluster",
              "lost Redis (" + options_.name + "): " + std::string(why) + "; connecting again");
  uv_timer_start(
      retry_, [](uv_timer_t* t) { static_cast<RedisLink*>(t->data)->connect(); },
      static_cast<uint64_t>(backoff_ms_), 0);
  backoff_ms_ = std::min(backoff_ms_ * 2, options_.backoff_max_ms);
}

void RedisLink::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this returns.
    self->lost(ac->errstr);
    return;
  }
  self->connected_ = true;
  self->backoff_ms_ = self->options_.backoff_min_ms;
  log_write(LogLevel::kInfo, "cluster", "connected to Redis (" + self->options_.name + ")");
  if (self->options_.subscribe.empty()) {
    self->set_up(true);
    return;
  }
  const char* argv[] = {"SUBSCRIBE", self->options_.subscribe.c_str()};
  size_t lens[] = {9, self->options_.subscribe.size()};
  redisAsyncCommandArgv(self->ctx_, &RedisLink::on_subscribed, self, 2, argv, lens);
}

void RedisLink::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisLink*>(ac->data);
  if (self == nullptr) return;
  // hiredis frees the context after this returns.
  self->lost(status == REDIS_OK ? "closed" : (ac->errstr[0] != '\0' ? ac->errstr : "connection lost"));
}

// Every reply on the subscribed channel: the confirmation first, then one
// ["message", channel, payload] per publication.
void RedisLink::on_subscribed(redisAsyncContext* ac, void* r, void* privdata) {
  auto* self = static_cast<RedisLink*>(privdata);
  auto* reply = static_cast<redisReply*>(r);
  if (reply == nullptr || ac->data == nullptr || self->closing_) return;
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
  const redisReply* kind = reply->element[0];
  if (kind->type != REDIS_REPLY_STRING) return;
  std::string_view k(kind->str, kind->len);
  if (k == "subscribe") {
    self->set_up(true);
  } else if (k == "message" && reply->element[2]->type == REDIS_REPLY_STRING && self->handlers_.message) {
    self->handlers_.message(std::string_view(reply->element[2]->str, reply->element[2]->len));
  }
}

void RedisLink::on_reply(redisAsyncContext* /*ac*/, void* r, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  RedisLink* self = p->link;
  if (!self->closing_) {
    // Replies come in the order of the commands.
    if (!self->sent_ms_.empty()) self->sent_ms_.pop_front();
    p->done(static_cast<const redisReply*>(r));
  }
  delete p;
}

void RedisLink::check_stalled(int64_t timeout_ms) {
  if (ctx_ == nullptr || sent_ms_.empty()) return;
  if (loop_now_ms(loop_) - sent_ms_.front() <= static_cast<uint64_t>(timeout_ms)) return;
  drop("no answer for " + std::to_string(timeout_ms) + " ms");
}

void RedisLink::drop(std::string_view why) {
  if (ctx_ == nullptr) return;
  log_write(LogLevel::kWarn, "cluster",
            "dropping the Redis connection (" + options_.name + "): " + std::string(why));
  // The waiting commands end with no reply, then on_disconnect starts over.
  redisAsyncContext* ac = ctx_;
  redisAsyncFree(ac);
  if (ctx_ != nullptr) lost(why);  // never connected: no disconnect callback
}

bool RedisLink::command(const std::vector<std::string>& args, Reply done) {
  if (!up_ || ctx_ == nullptr || args.empty()) return false;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* p = new Pending{this, std::move(done)};
  if (redisAsyncCommandArgv(ctx_, &RedisLink::on_reply, p, static_cast<int>(args.size()), argv.data(),
                            lens.data()) != REDIS_OK) {
    delete p;
    return false;
  }
  sent_ms_.push_back(loop_now_ms(loop_));
  return true;
}

}  // namespace hut::cluster

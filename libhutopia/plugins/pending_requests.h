// The one owner of the requests handed to plugins: every widget op (from a
// bus session or the embedding program) and every HTTP request for
// /api/<plugin>/..., from dispatch to its one answer, each with its deadline.
// The bus and the space keep no state for a request; they get its id and a
// callback (PluginAnswerFn, util/vocab.h) that delivers the answer.
//
// A request ends exactly once: with the plugin's answer, at its deadline
// (kExpired), when its plugin stops (kStopped), or silently when its owner
// (the asking session) goes away or the dispatch is refused. An answer for an
// id that is not pending, or pending for another plugin or of the other kind
// (widget or HTTP), is HUT_ENOENT.
//
// Thread: the loop thread only.
// Ownership: the plugin runtime owns it. Its deadline timer is unreferenced
// (it never keeps the loop alive) and closed with it; the loop must run once
// more to free it.
#ifndef HUTOPIA_PLUGINS_PENDING_REQUESTS_H_
#define HUTOPIA_PLUGINS_PENDING_REQUESTS_H_

#include <uv.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "util/vocab.h"

namespace hut {

class PendingRequests {
 public:
  // Requests wait `timeout_ms` for their answer.
  PendingRequests(uv_loop_t* loop, int64_t timeout_ms);
  ~PendingRequests();  // drops every request unanswered
  PendingRequests(const PendingRequests&) = delete;
  PendingRequests& operator=(const PendingRequests&) = delete;

  // Takes a request for `plugin` on behalf of `owner` (a session id, or any
  // name the caller counts by); returns its id, unique while this lives.
  RequestId add(std::string_view plugin, std::string_view owner, bool http, PluginAnswerFn answer);
  // The plugin's answer (kData, kError or kHttp; the id and plugin name are
  // taken from the arguments). HUT_ENOENT as above; then HUT_EINVAL when not
  // `valid`, and otherwise what the callback returned. HUT_EINVAL and a
  // refusal by the callback leave the request pending.
  int answer(std::string_view plugin, RequestId id, PluginAnswer answer, bool valid = true);
  // Forgets a request without answering it (its dispatch was refused).
  void cancel(RequestId id);
  // Forgets every request of `owner` without answering (the session closed).
  void drop_owner(std::string_view owner);
  // Answers every request of `plugin` kStopped with `message`.
  void plugin_stopped(std::string_view plugin, std::string_view message);

  // For requests added from now on; a reload's new limit.
  void set_timeout(int64_t timeout_ms);
  size_t size() const { return pending_.size(); }
  size_t count(std::string_view owner) const;
  // Answers kExpired every request whose deadline has passed; the timer
  // calls it, and a test may.
  void expire();

 private:
  struct Entry {
    std::string plugin;
    std::string owner;
    bool http = false;
    uint64_t deadline_ms = 0;
    int64_t timeout_ms = 0;
    PluginAnswerFn answer;
  };
  // Takes the entry out (the callback may add or end others) and delivers.
  int deliver(std::unordered_map<RequestId, Entry>::iterator it, PluginAnswer& a, bool refusable);
  void forget(std::unordered_map<RequestId, Entry>::iterator it);
  void arm();

  uv_loop_t* loop_;
  int64_t timeout_ms_;
  std::unordered_map<RequestId, Entry> pending_;
  std::unordered_map<std::string, size_t> per_owner_;
  RequestId next_id_ = 1;
  uv_timer_t* timer_ = nullptr;  // heap, freed by its close callback
};

}  // namespace hut

#endif  // HUTOPIA_PLUGINS_PENDING_REQUESTS_H_

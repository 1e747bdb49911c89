// Plugin timers (libuv timers owned by their instance) and callbacks posted
// from a plugin's own threads (the runtime's LoopQueue, each callback owned by
// its instance). A release given with the _ex functions (ABI 1.5)
// runs once when the timer or the posted callback is done with its arg.

#include "plugins/runtime_impl.h"

#include <functional>
#include <string>

namespace hut {

void close_timer(PluginTimer* t) {
  uv_timer_stop(&t->handle);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
           [](uv_handle_t* h) { delete static_cast<PluginTimer*>(h->data); });
}

void end_timers(hut_plugin* inst) {
  std::map<uint64_t, PluginTimer*> timers;
  timers.swap(inst->timers);
  for (auto& [id, t] : timers) close_timer(t);
  // The handles are freed by their close callbacks, on a later loop turn.
  for (auto& [id, t] : timers)
    if (t->release != nullptr) t->release(inst, t->arg);
}

void timer_fired(uv_timer_t* h) {
  auto* t = static_cast<PluginTimer*>(h->data);
  hut_plugin* inst = t->inst;
  hut_callback cb = t->cb;
  void* arg = t->arg;
  hut_callback release = nullptr;
  if (!t->repeating) {
    release = t->release;
    inst->timers.erase(t->id);
    close_timer(t);
  }
  inst->runtime->measured(inst, [&] {
    cb(inst, arg);
    return 0;
  });
  if (release != nullptr) release(inst, arg);
}

int RuntimeImpl::host_timer_start(hut_plugin* self, uint64_t timeout_ms, uint64_t repeat_ms, hut_callback cb,
                                  void* arg, uint64_t* timer_id) {
  return host_timer_start_ex(self, timeout_ms, repeat_ms, cb, arg, nullptr, timer_id);
}

int RuntimeImpl::host_timer_start_ex(hut_plugin* self, uint64_t timeout_ms, uint64_t repeat_ms,
                                     hut_callback cb, void* arg, hut_callback release, uint64_t* timer_id) {
  if (self == nullptr || cb == nullptr) return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  auto* t = new PluginTimer;
  if (int rc = uv_timer_init(rt->loop_, &t->handle); rc != 0) {
    delete t;
    return HUT_EINTERNAL;
  }
  t->handle.data = t;
  t->inst = self;
  t->id = rt->next_timer_id_++;
  t->cb = cb;
  t->arg = arg;
  t->release = release;
  t->repeating = repeat_ms > 0;
  uv_timer_start(&t->handle, timer_fired, timeout_ms, repeat_ms);
  self->timers.emplace(t->id, t);
  if (timer_id) *timer_id = t->id;
  return HUT_OK;
}

int RuntimeImpl::host_timer_stop(hut_plugin* self, uint64_t timer_id) {
  if (self == nullptr) return HUT_EINVAL;
  auto it = self->timers.find(timer_id);
  if (it == self->timers.end()) return HUT_ENOENT;
  PluginTimer* t = it->second;
  self->timers.erase(it);
  close_timer(t);
  if (t->release != nullptr) t->release(self, t->arg);  // freed on a later loop turn
  return HUT_OK;
}

int RuntimeImpl::host_post(hut_plugin* self, hut_callback cb, void* arg) {
  return host_post_ex(self, cb, arg, nullptr);
}

int RuntimeImpl::host_post_ex(hut_plugin* self, hut_callback cb, void* arg, hut_callback release) {
  if (self == nullptr || cb == nullptr) return HUT_EINVAL;
  RuntimeImpl* rt = self->runtime;
  std::string name = self->name;
  uint64_t serial = self->serial;
  auto run = [rt, name = std::move(name), serial, cb, arg, release] {
    // stop() drops an instance's queued callbacks, but not those the queue
    // has already taken into this turn: an earlier one may have stopped it.
    hut_plugin* inst = rt->loaded(name);
    if (inst == nullptr || inst->serial != serial) return;
    rt->measured(inst, [&] {
      cb(inst, arg);
      return 0;
    });
    if (release != nullptr) release(inst, arg);
  };
  std::function<void()> on_drop;
  if (release != nullptr) on_drop = [self, arg, release] { release(self, arg); };
  // Posted under the lock that stop() takes to mark the instance closing, so
  // nothing is queued for it after stop() has dropped its callbacks.
  std::lock_guard<std::mutex> lock(rt->post_mu_);
  if (self->closing || !rt->posts_.post(self, std::move(run), std::move(on_drop))) return HUT_ESTATE;
  return HUT_OK;
}

}  // namespace hut

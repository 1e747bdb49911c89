// The plugins' key-value data. It lives in the space's Store. kv_put and
// kv_delete record the write in an overlay (KvOverlay), submit it to the
// store's writer thread and return at once; the store's callback drops the
// overlay entry once the write is committed, unless a newer write of the same
// key replaced it. kv_get reads the overlay first, then the store
// (Store::kv_get_now). The runtime owns the overlay; the store's callbacks
// hold only a weak reference.

#include "plugins/runtime_impl.h"

#include <cstring>

#include "store/store.h"
#include "util/log.h"

namespace hut {

namespace {

constexpr size_t kMaxKeyLen = 1024;
constexpr size_t kMaxValueLen = 16u << 20;

int kv_key_check(const char* key) {
  if (key == nullptr || *key == '\0') return HUT_EINVAL;
  if (std::strlen(key) > kMaxKeyLen) return HUT_ETOOBIG;
  return HUT_OK;
}

}  // namespace

const RuntimeImpl::KvPending* RuntimeImpl::kv_pending(const std::string& plugin,
                                                      const std::string& key) const {
  auto p = kv_overlay_->plugins.find(plugin);
  if (p == kv_overlay_->plugins.end()) return nullptr;
  auto k = p->second.find(key);
  return k == p->second.end() ? nullptr : &k->second;
}

int RuntimeImpl::kv_write(const hut_plugin* inst, std::string key, std::optional<std::string> value) {
  KvOverlay& overlay = *kv_overlay_;
  uint64_t generation = ++overlay.next_generation;
  bool erase = !value.has_value();
  overlay.plugins[inst->name].insert_or_assign(key, KvPending{generation, value});
  // The overlay is owned by this runtime alone: when the weak reference
  // cannot be locked, the runtime is gone and so is `this`.
  Store::DoneCallback done = [this, weak = std::weak_ptr<KvOverlay>(kv_overlay_), plugin = inst->name, key,
                              generation, erase](Status status) {
    if (auto alive = weak.lock()) kv_acknowledged(plugin, key, generation, erase, status);
  };
  kv_submitting_ = generation;
  kv_refused_ = false;
  if (value) {
    store_->kv_put(inst->name, std::move(key), std::move(*value), std::move(done));
  } else {
    store_->kv_delete(inst->name, std::move(key), std::move(done));
  }
  kv_submitting_ = 0;
  return kv_refused_ ? HUT_EIO : HUT_OK;
}

void RuntimeImpl::kv_acknowledged(const std::string& plugin, const std::string& key, uint64_t generation,
                                  bool erase, const Status& status) {
  auto p = kv_overlay_->plugins.find(plugin);
  if (p != kv_overlay_->plugins.end()) {
    auto k = p->second.find(key);
    if (k != p->second.end() && k->second.generation == generation) {
      p->second.erase(k);
      if (p->second.empty()) kv_overlay_->plugins.erase(p);
    }
  }
  // A delete that found nothing: a put before it failed; the key is absent
  // either way.
  if (status.ok() || (erase && status.is_not_found())) return;
  if (generation == kv_submitting_) {
    kv_refused_ = true;  // kv_write returns HUT_EIO: the plugin learns of it
  } else {
    record(plugin).stats.kv_failed_writes++;
  }
  log_printf(LogLevel::kError, "plugins", "plugin %s: the key-value %s of key '%s' was not stored: %s",
             plugin.c_str(), erase ? "delete" : "write", key.c_str(), status.to_string().c_str());
}

int RuntimeImpl::host_kv_get(hut_plugin* self, const char* key, void* buf, size_t buflen, size_t* value_len) {
  if (self == nullptr || (buf == nullptr && buflen > 0)) return HUT_EINVAL;
  if (int rc = kv_key_check(key); rc != HUT_OK) return rc;
  std::string value;
  if (int rc = self->runtime->kv_lookup(self, key, &value, "kv_get"); rc != HUT_OK) return rc;
  if (value_len) *value_len = value.size();
  if (buflen < value.size()) return HUT_ERANGE;
  if (!value.empty()) std::memcpy(buf, value.data(), value.size());
  if (buflen > value.size()) static_cast<char*>(buf)[value.size()] = '\0';
  return HUT_OK;
}

int RuntimeImpl::kv_lookup(const hut_plugin* inst, const std::string& key, std::string* value,
                           const char* op) {
  if (const KvPending* p = kv_pending(inst->name, key)) {
    if (!p->value) return HUT_ENOENT;
    if (value != nullptr) *value = *p->value;
    return HUT_OK;
  }
  Status st = store_->kv_get_now(inst->name, key, value);
  if (st.is_not_found()) return HUT_ENOENT;
  if (!st.ok()) {
    log_write(LogLevel::kError, inst->component, std::string(op) + " '" + key + "': " + st.to_string());
    return HUT_EIO;
  }
  return HUT_OK;
}

int RuntimeImpl::host_kv_put(hut_plugin* self, const char* key, const void* value, size_t value_len) {
  if (self == nullptr || (value == nullptr && value_len > 0)) return HUT_EINVAL;
  if (int rc = kv_key_check(key); rc != HUT_OK) return rc;
  if (value_len > kMaxValueLen) return HUT_ETOOBIG;
  std::string v = value_len > 0 ? std::string(static_cast<const char*>(value), value_len) : std::string();
  return self->runtime->kv_write(self, key, std::move(v));
}

int RuntimeImpl::host_kv_delete(hut_plugin* self, const char* key) {
  if (self == nullptr) return HUT_EINVAL;
  if (int rc = kv_key_check(key); rc != HUT_OK) return rc;
  std::string key_s(key);
  // Absent: a pending delete, or nothing pending and nothing stored.
  if (int rc = self->runtime->kv_lookup(self, key_s, nullptr, "kv_delete"); rc != HUT_OK) return rc;
  return self->runtime->kv_write(self, std::move(key_s), std::nullopt);
}

}  // namespace hut

// hut::Store on PostgreSQL: the shared SQL store with what is PostgreSQL's
// own, the start-up reads and the plugin values kv_get_now() answers from.
#include "store/pg_store.h"

#include <filesystem>
#include <map>
#include <optional>
#include <utility>

#include "store/pg_conn.h"
#include "store/pg_migrate.h"
#include "store/sql_store.h"
#include "store/sqlite_conn.h"

namespace hut {
namespace {

using pg::Conn;

// Every plugin value, read at start and kept up to date by this store's own
// writes: kv_get_now() runs on the loop thread, where libpq may not block.
// Loop thread only once the store serves.
using KvCache = std::map<std::pair<std::string, std::string>, std::string, std::less<>>;

Result<KvCache> read_kv(Conn& c) {
  KvCache cache;
  Conn::Query q(c, "SELECT plugin, key, value FROM plugin_kv");
  while (q.step()) cache.emplace(std::make_pair(q.str(0), q.str(1)), q.blob(2));
  HUT_RETURN_IF_ERROR(q.status());
  return cache;
}

// The rows of an older versions' key-value file (see Store::import_plugin_kv).
Result<std::vector<std::tuple<std::string, std::string, std::string>>> read_old_kv(const std::string& file) {
  std::vector<std::tuple<std::string, std::string, std::string>> rows;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) return Status::not_found("no file " + file);
  // Read-write, so that SQLite folds a WAL left by a crash into the file.
  auto old = sqlite::Conn::connect(file, sqlite::Conn::Mode::kWrite, 5000);
  if (!old.ok()) return with_context(old.status(), "cannot open " + file + ": ");
  {
    SqliteQuery q(**old, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'plugin_kv'");
    if (!q.step()) return with_context(q.status(), "cannot read " + file + ": ");
    if (q.i64(0) == 0) return rows;  // an older version that never stored a value
  }
  SqliteQuery q(**old, "SELECT plugin, key, value FROM plugin_kv");
  while (q.step()) rows.emplace_back(q.str(0), q.str(1), q.blob(2));
  HUT_RETURN_IF_ERROR(with_context(q.status(), "cannot read " + file + ": "));
  return rows;
}

class PgStore final : public store::SqlStore<Conn> {
 public:
  PgStore(uv_loop_t* loop, std::string conninfo, const StoreOptions& options, KvCache kv)
      : SqlStore(loop, options.max_batch), conninfo_(std::move(conninfo)), kv_(std::move(kv)) {}

  using SqlStore::start;

  Result<StoreState> load_state() override {
    auto conn = Conn::connect(conninfo_);
    if (!conn.ok()) return conn.status();
    return sql::load_state(**conn);
  }

  // The cache follows this store's writes when they are committed.
  void kv_put(std::string plugin, std::string key, std::string value, DoneCallback done) override {
    auto entry = std::make_pair(plugin, key);
    auto copy = value;
    SqlStore::kv_put(
        std::move(plugin), std::move(key), std::move(value),
        [this, entry = std::move(entry), copy = std::move(copy), done = std::move(done)](Status s) {
          if (s.ok()) committed(entry, copy);
          if (done) done(std::move(s));
        });
  }

  void kv_delete(std::string plugin, std::string key, DoneCallback done) override {
    auto entry = std::make_pair(plugin, key);
    SqlStore::kv_delete(std::move(plugin), std::move(key),
                        [this, entry = std::move(entry), done = std::move(done)](Status s) {
                          if (s.ok()) committed(entry, std::nullopt);
                          if (done) done(std::move(s));
                        });
  }

  void set_kv_written(
      std::function<void(const std::string& plugin, const std::string& key)> written) override {
    written_ = std::move(written);
  }

  // Read on the reader thread; the answer replaces the cached value unless
  // this store committed a write of the key since the read was asked (the
  // read may have seen the database before that write).
  void kv_reload(std::string plugin, std::string key) override {
    auto entry = std::make_pair(plugin, key);
    uint64_t asked = writes_;
    SqlStore::kv_get(std::move(plugin), std::move(key),
                     [this, entry = std::move(entry), asked](Result<std::string> value) {
                       auto w = written_at_.find(entry);
                       if (w != written_at_.end() && w->second > asked) return;
                       if (value.ok())
                         kv_[entry] = std::move(*value);
                       else if (value.status().is_not_found())
                         kv_.erase(entry);
                       // Unreadable now: the cached value stays until the next change.
                     });
  }

  void kv_reload_all() override {
    uint64_t asked = writes_;
    executor_.read<KvCache, Conn>([](Conn& c) { return read_kv(c); },
                                  [this, asked](Result<KvCache> all) {
                                    // Unreadable now: the copy stays as it is.
                                    if (!all.ok()) return;
                                    KvCache next = std::move(*all);
                                    // Keys this store wrote since: its own values.
                                    for (const auto& [entry, at] : written_at_) {
                                      if (at <= asked) continue;
                                      auto mine = kv_.find(entry);
                                      if (mine != kv_.end())
                                        next[entry] = mine->second;
                                      else
                                        next.erase(entry);
                                    }
                                    kv_ = std::move(next);
                                  });
  }

  Status kv_get_now(std::string_view plugin, std::string_view key, std::string* value) override {
    if (executor_.closing()) return Status::failed_precondition("the store is closed");
    auto it = kv_.find(std::make_pair(std::string(plugin), std::string(key)));
    if (it == kv_.end()) return sql::no_key(plugin, key);
    if (value != nullptr) *value = it->second;
    return Status();
  }

  Result<uint64_t> import_plugin_kv(const std::string& file) override {
    auto rows = read_old_kv(file);
    if (!rows.ok()) return rows.status();
    auto conn = Conn::connect(conninfo_);
    if (!conn.ok()) return conn.status();
    Conn& c = **conn;
    uint64_t added = 0;
    Status s = c.exec("BEGIN");
    for (const auto& [plugin, key, value] : *rows) {
      if (!s.ok()) break;
      Conn::Query q(c,
                    "INSERT INTO plugin_kv (plugin, key, value) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (plugin, key) DO NOTHING");
      s = q.bind(1, plugin).bind(2, key).bind_blob(3, value).run();
      if (s.ok() && c.changes() > 0) {
        ++added;
        kv_.emplace(std::make_pair(plugin, key), value);
      }
    }
    if (s.ok()) s = c.commit();
    if (!s.ok()) {
      c.abandon();
      return with_context(s, "cannot import " + file + ": ");
    }
    return added;
  }

 private:
  void committed(const std::pair<std::string, std::string>& entry, std::optional<std::string> value) {
    if (value)
      kv_[entry] = std::move(*value);
    else
      kv_.erase(entry);
    written_at_[entry] = ++writes_;
    if (written_) written_(entry.first, entry.second);
  }

  std::string conninfo_;
  KvCache kv_;
  std::function<void(const std::string&, const std::string&)> written_;
  uint64_t writes_ = 0;  // this store's committed value writes, counted
  // The count at each key's last committed write here.
  std::map<std::pair<std::string, std::string>, uint64_t> written_at_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_pg_store(uv_loop_t* loop, const std::string& conninfo,
                                             const StoreOptions& options) {
  auto writer = Conn::connect(conninfo);
  if (!writer.ok()) return writer.status();
  HUT_RETURN_IF_ERROR(with_context(pg::migrate(**writer), "store: "));
  auto reader = Conn::connect(conninfo);
  if (!reader.ok()) return reader.status();
  auto kv = read_kv(**reader);
  if (!kv.ok()) return kv.status();
  auto store = std::make_unique<PgStore>(loop, conninfo, options, std::move(*kv));
  HUT_RETURN_IF_ERROR(store->start(std::move(*writer), std::move(*reader), nullptr));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace hut

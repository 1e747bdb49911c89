// The plugins' key-value data on the space's store: the kv test plugin (a
// real shared library) on the real runtime, with the store on a real SQLite
// file; and in an embedded space restarted on the same data folder.
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include "net/http_client.h"
#include "plugin_fixture.h"
#include "space/space_fixture.h"
#include "store/store_test_util.h"

using hut::PluginRuntime;
using hut::Status;
using hut::test::PluginFixture;

namespace {

// Another connection on the store's file that holds its write lock: the
// store's writer thread waits for it, so writes stay in flight until
// release(). A write on the loop thread would wait too, and then fail.
class WriteLock {
 public:
  explicit WriteLock(const std::string& path) {
    ok_ = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK &&
          sqlite3_busy_timeout(db_, 5000) == SQLITE_OK &&
          sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~WriteLock() { release(); }
  WriteLock(const WriteLock&) = delete;
  WriteLock& operator=(const WriteLock&) = delete;
  bool ok() const { return ok_; }
  void release() {
    if (db_ == nullptr) return;
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
  bool ok_ = false;
};

struct Asker {
  PluginFixture& f;
  hut::test::Recorder::Reply operator()(const std::string& data) {
    const auto* r = f.answer(f.widget("kv", data));
    REQUIRE(r != nullptr);
    return *r;
  }
};

}  // namespace

TEST_CASE("plugins kv: writes are read back at once and committed in groups by the store's writer") {
  PluginFixture f;
  f.add("kv");
  PluginRuntime& rt = f.start();
  REQUIRE(rt.load("kv").ok());
  Asker ask{f};

  WriteLock lock(f.store_path());
  REQUIRE(lock.ok());
  // Every answer below comes while the store's file is locked for writing:
  // no write runs on the loop thread.
  CHECK(ask(R"({"op":"put","key":"a","value":"one"})").ok);
  CHECK(ask(R"({"op":"get","key":"a"})").data == R"({"value":"one"})");
  // Not committed yet: the store itself does not have it.
  CHECK(f.store().kv_get_now("kv", "a", nullptr).is_not_found());
  CHECK(f.store().stats().commits == 0);
  CHECK(f.store().stats().pending_writes == 1);

  CHECK(ask(R"({"op":"del","key":"zzz"})").data == R"({"deleted":false})");
  CHECK(ask(R"({"op":"del","key":"a"})").data == R"({"deleted":true})");
  CHECK(ask(R"({"op":"get","key":"a"})").code == "not_found");
  CHECK(ask(R"({"op":"del","key":"a"})").data == R"({"deleted":false})");
  CHECK(ask(R"({"op":"put","key":"a","value":"two"})").ok);
  CHECK(ask(R"({"op":"get","key":"a"})").data == R"({"value":"two"})");
  // 500 puts in a row, each read back at once.
  CHECK(ask(R"({"op":"many","n":500})").data == R"({"ok":true})");
  CHECK(ask(R"({"op":"big"})").data == R"({"ok":true})");
  CHECK(f.store().stats().commits == 0);
  CHECK(f.store().stats().writes == 0);

  lock.release();
  REQUIRE(f.run_until([&] { return f.store().stats().pending_writes == 0; }, 10000));
  auto stats = f.store().stats();
  // put, delete, put, 500 puts and big's put: all run by the writer thread,
  // in at most two transactions (the one that waited for the lock, and the
  // rest).
  CHECK(stats.writes == 504);
  CHECK(stats.failed_commits == 0);
  CHECK(stats.commits >= 1);
  CHECK(stats.commits <= 2);
  MESSAGE(stats.writes << " key-value writes in " << stats.commits << " commits");

  std::string value;
  REQUIRE(f.store().kv_get_now("kv", "a", &value).ok());
  CHECK(value == "two");
  REQUIRE(f.store().kv_get_now("kv", "m499", &value).ok());
  CHECK(value == "499");
  CHECK(ask(R"({"op":"get","key":"m7"})").data == R"({"value":"7"})");
  CHECK(f.stats("kv").kv_failed_writes == 0);
  // Nothing was written next to the store.
  CHECK(!std::filesystem::exists(f.data_dir() + "/plugins.db"));
}

TEST_CASE("plugins kv: the acknowledgement of an older write keeps a newer one of the same key visible") {
  PluginFixture f;
  f.add("kv");
  REQUIRE(f.start().load("kv").ok());
  Asker ask{f};
  CHECK(ask(R"({"op":"put","key":"a","value":"one"})").ok);
  // The writer commits it; its callback waits for the loop, which does not run.
  for (int i = 0; i < 1000 && f.store().stats().writes < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(f.store().stats().writes == 1);
  WriteLock lock(f.store_path());
  REQUIRE(lock.ok());
  CHECK(ask(R"({"op":"put","key":"a","value":"two"})").ok);
  // The first write's callback runs; the second write is still in flight.
  REQUIRE(f.run_until([&] { return f.store().stats().pending_writes == 1; }));
  CHECK(ask(R"({"op":"get","key":"a"})").data == R"({"value":"two"})");
  std::string stored;
  REQUIRE(f.store().kv_get_now("kv", "a", &stored).ok());
  CHECK(stored == "one");
  lock.release();
  REQUIRE(f.run_until([&] { return f.store().stats().pending_writes == 0; }, 10000));
  REQUIRE(f.store().kv_get_now("kv", "a", &stored).ok());
  CHECK(stored == "two");
  CHECK(ask(R"({"op":"get","key":"a"})").data == R"({"value":"two"})");
}

TEST_CASE("plugins kv: writes in flight survive a store destroyed without close, and a restart") {
  PluginFixture f;
  f.add("kv");
  REQUIRE(f.start().load("kv").ok());
  Asker ask{f};
  CHECK(ask(R"({"op":"many","n":200})").data == R"({"ok":true})");
  CHECK(ask(R"({"op":"put","key":"last","value":"written last"})").ok);
  f.stop(false);
  REQUIRE(f.start().load("kv").ok());
  CHECK(ask(R"({"op":"get","key":"m199"})").data == R"({"value":"199"})");
  CHECK(ask(R"({"op":"get","key":"last"})").data == R"({"value":"written last"})");
}

TEST_CASE("plugins kv: the plugins.db of older versions is imported once before plugins load") {
  PluginFixture f;
  f.add("kv");
  std::filesystem::create_directories(f.data_dir());
  const std::string file = f.data_dir() + "/plugins.db";
  REQUIRE(hut::test::write_old_plugins_db(file, {{"kv", "a", "from the file"}, {"kv", "b", "file b"}}));
  REQUIRE(hut::test::write_old_plugins_db(file, {{"kv", "c", "in the WAL"}, {"other", "x", "y"}}, true));
  PluginRuntime& rt = f.start();
  CHECK(!std::filesystem::exists(file));
  CHECK(!std::filesystem::exists(file + "-wal"));
  CHECK(std::filesystem::exists(file + ".imported"));
  REQUIRE(rt.load("kv").ok());
  Asker ask{f};
  CHECK(ask(R"({"op":"get","key":"a"})").data == R"({"value":"from the file"})");
  CHECK(ask(R"({"op":"get","key":"c"})").data == R"({"value":"in the WAL"})");
  std::string other;
  CHECK(f.store().kv_get_now("other", "x", &other).ok());
  CHECK(other == "y");

  CHECK(ask(R"({"op":"del","key":"a"})").data == R"({"deleted":true})");
  CHECK(ask(R"({"op":"put","key":"b","value":"new b"})").ok);
  // A new runtime does not import the renamed file again.
  REQUIRE(f.restart().load("kv").ok());
  CHECK(ask(R"({"op":"get","key":"a"})").code == "not_found");
  CHECK(ask(R"({"op":"get","key":"b"})").data == R"({"value":"new b"})");
  CHECK(std::filesystem::exists(file + ".imported"));
}

TEST_CASE("plugins kv: a plugins.db that cannot be read keeps the runtime from starting") {
  PluginFixture f;
  std::filesystem::create_directories(f.data_dir());
  const std::string file = f.data_dir() + "/plugins.db";
  hut::test::write_file(file, std::string(8192, 'j'));
  CHECK_THROWS(f.start());
  CHECK(f.create_status().code() == Status::Code::kFailedPrecondition);
  CHECK(f.create_status().message().find("move the file away") != std::string::npos);
  CHECK(std::filesystem::exists(file));
  CHECK(!std::filesystem::exists(file + ".imported"));
}

TEST_CASE("plugins kv: an embedded space keeps the values across a restart on the same data folder") {
  hut::test::TempDir dir;
  hut::test::TempDir plugins;
  std::filesystem::copy_file(hut::test::build_path("test/plugins/kv.so"), plugins.file("kv.so"));
  hut::SpaceConfig config = hut::test::test_config(dir);
  config.space.plugins_dir = plugins.path();
  {
    hut::test::EmbeddedSpace space(config);
    REQUIRE(space.ok());
    int port = space.port();
    auto put = hut::test::http_request(port, "PUT", "/api/kv/greeting", {}, "hello");
    CHECK(put.status == 200);
    CHECK(hut::test::http_get(port, "/api/kv/greeting").body == "hello");
    for (int i = 0; i < 30; ++i) {
      std::string k = std::to_string(i);
      REQUIRE(hut::test::http_request(port, "PUT", "/api/kv/k" + k, {}, "v" + k).status == 200);
    }
    CHECK(hut::test::http_request(port, "DELETE", "/api/kv/k0").status == 200);
    CHECK(hut::test::http_request(port, "DELETE", "/api/kv/k0").status == 404);
    CHECK(hut::test::http_get(port, "/api/kv/k0").status == 404);
  }
  hut::test::EmbeddedSpace space(config);
  REQUIRE(space.ok());
  int port = space.port();
  CHECK(hut::test::http_get(port, "/api/kv/greeting").body == "hello");
  CHECK(hut::test::http_get(port, "/api/kv/k29").body == "v29");
  CHECK(hut::test::http_get(port, "/api/kv/k0").status == 404);
  CHECK(!std::filesystem::exists(dir.file("plugins.db")));
}

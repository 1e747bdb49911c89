// The store's side of the plugins' key-value data that the plugin runtime
// needs: the synchronous point read of the loop thread, and the import of the
// key-value file of older versions. Real SQLite files in a temporary folder.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "store/store_test_util.h"

using hut::Result;
using hut::Status;
using hut::Store;
using hut::test::StoreFixture;
using hut::test::write_old_plugins_db;

namespace {

Status put(StoreFixture& f, const std::string& plugin, const std::string& key, const std::string& value) {
  return f.wait_done([&](Store::DoneCallback cb) { f.store().kv_put(plugin, key, value, cb); });
}

std::string now(StoreFixture& f, const std::string& plugin, const std::string& key) {
  std::string value;
  Status s = f.store().kv_get_now(plugin, key, &value);
  return s.ok() ? value : "<" + std::string(s.is_not_found() ? "absent" : s.to_string()) + ">";
}

}  // namespace

TEST_CASE("store: kv_get_now answers at once with what the writer committed") {
  StoreFixture f;
  REQUIRE(f.open().ok());
  CHECK(now(f, "echo", "k") == "<absent>");
  std::string binary("a\0b\xff", 4);
  REQUIRE(put(f, "echo", "k", binary).ok());
  REQUIRE(put(f, "echo", "empty", "").ok());
  REQUIRE(put(f, "poll", "k", "other").ok());
  CHECK(now(f, "echo", "k") == binary);
  CHECK(now(f, "echo", "empty").empty());
  CHECK(now(f, "poll", "k") == "other");
  // Presence only.
  CHECK(f.store().kv_get_now("echo", "k", nullptr).ok());
  CHECK(f.store().kv_get_now("echo", "nothing", nullptr).is_not_found());
  // A delete is seen by the next read.
  REQUIRE(f.wait_done([&](Store::DoneCallback cb) { f.store().kv_delete("echo", "k", cb); }).ok());
  CHECK(now(f, "echo", "k") == "<absent>");
  // The writes ran on the writer thread: three puts and a delete.
  CHECK(f.store().stats().writes == 4);

  bool closed = false;
  f.store().close([&] { closed = true; });
  CHECK(f.store().kv_get_now("poll", "k", nullptr).code() == Status::Code::kFailedPrecondition);
  REQUIRE(f.run_until([&] { return closed; }));
}

TEST_CASE("store: the key-value file of older versions is imported once, in one transaction") {
  StoreFixture f;
  hut::test::TempDir old;
  std::string file = old.file("plugins.db");
  std::string binary("x\0y\xfe", 4);
  // Some rows checkpointed into the file, the later ones only in its WAL.
  REQUIRE(write_old_plugins_db(file, {{"counter", "value", "16"}, {"echo", "a", "old a"}}));
  REQUIRE(
      write_old_plugins_db(file, {{"echo", "b", binary}, {"echo", "empty", ""}, {"poll", "q", "1"}}, true));
  REQUIRE(std::filesystem::file_size(file + "-wal") > 0);

  REQUIRE(f.open().ok());
  // The store's own value of a key wins over the file's.
  REQUIRE(put(f, "echo", "a", "new a").ok());
  auto added = f.store().import_plugin_kv(file);
  REQUIRE(added.ok());
  CHECK(*added == 4);
  CHECK(now(f, "echo", "a") == "new a");
  CHECK(now(f, "counter", "value") == "16");
  CHECK(now(f, "echo", "b") == binary);
  CHECK(now(f, "echo", "empty").empty());
  CHECK(now(f, "poll", "q") == "1");
  // The file is left in place (the runtime renames it), with its WAL folded in.
  CHECK(std::filesystem::exists(file));
  CHECK(!std::filesystem::exists(file + "-wal"));
  // A second import adds nothing: every key is the store's now.
  auto again = f.store().import_plugin_kv(file);
  REQUIRE(again.ok());
  CHECK(*again == 0);

  // The imported rows are durable: a new store on the file has them.
  REQUIRE(f.close_store());
  REQUIRE(f.open().ok());
  CHECK(now(f, "echo", "b") == binary);
  CHECK(now(f, "echo", "a") == "new a");
}

TEST_CASE("store: an import that cannot read its file changes nothing") {
  StoreFixture f;
  REQUIRE(f.open().ok());
  hut::test::TempDir old;
  CHECK(f.store().import_plugin_kv(old.file("plugins.db")).status().is_not_found());
  CHECK(!std::filesystem::exists(old.file("plugins.db")));

  hut::test::write_file(old.file("junk.db"), std::string(8192, 'j'));
  auto junk = f.store().import_plugin_kv(old.file("junk.db"));
  CHECK(!junk.ok());
  CHECK(junk.status().message().find("junk.db") != std::string::npos);

  // An empty file (an empty SQLite database, without the table), and a file
  // with the table but no rows.
  hut::test::write_file(old.file("zero.db"), "");
  auto zero = f.store().import_plugin_kv(old.file("zero.db"));
  REQUIRE(zero.ok());
  CHECK(*zero == 0);
  REQUIRE(write_old_plugins_db(old.file("empty.db"), {}));
  auto empty = f.store().import_plugin_kv(old.file("empty.db"));
  REQUIRE(empty.ok());
  CHECK(*empty == 0);
  CHECK(f.store().kv_get_now("echo", "a", nullptr).is_not_found());
}

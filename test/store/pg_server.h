// A real PostgreSQL server for the store tests, started once per test
// process: initdb and pg_ctl in a temporary directory, listening only on a
// Unix socket in it. PostgreSQL refuses to run as root, so under root the
// directory is given to `nobody` and the server runs as that user (runuser).
// Each test takes a fresh database of its own. When the binaries are missing
// the tests that need it are skipped, saying why.
#ifndef HUTOPIA_TEST_STORE_PG_SERVER_H_
#define HUTOPIA_TEST_STORE_PG_SERVER_H_

#include <pwd.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "test_util.h"

namespace hut::test {

class PgServer {
 public:
  // The server of this process, started on first use; null (with why() set)
  // when it cannot be.
  static PgServer* get() {
    static PgServer server;
    return server.ok_ ? &server : nullptr;
  }
  static const std::string& why() { return get_why(); }

  // A new empty database; its URL.
  std::string new_database() {
    std::string name = "t" + std::to_string(++databases_);
    exec_admin("CREATE DATABASE " + name);
    return url(name);
  }
  std::string url(const std::string& db) const {
    return "postgresql:///" + db + "?host=" + sock_ + "&user=hut";
  }

  // Runs one statement on the database `db_url` with psql, as another
  // program would; its output (rows unaligned, one a line), nullopt on error.
  std::optional<std::string> query(const std::string& db_url, const std::string& sql) {
    RunResult r = run_process(
        {bin_ + "/psql", "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", db_url, "-c", sql});
    if (r.status != 0) return std::nullopt;
    return r.out;
  }
  bool exec(const std::string& db_url, const std::string& sql) { return query(db_url, sql).has_value(); }

  // Stops the server (fast: open connections are cut) and starts it again.
  bool stop() { return ctl({"stop", "-m", "fast"}); }
  bool start() { return ctl({"start", "-w", "-t", "60", "-l", dir_.file("log"), "-o", options()}); }

  ~PgServer() {
    if (started_) ctl({"stop", "-m", "immediate"});
  }

 private:
  PgServer() {
    bin_ = find_bin();
    if (bin_.empty()) {
      get_why() = "no PostgreSQL binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin";
      return;
    }
    data_ = dir_.file("data");
    sock_ = dir_.path();
    if (geteuid() == 0) {
      struct passwd* pw = getpwnam("nobody");
      if (pw == nullptr || chown(dir_.path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        get_why() = "cannot give the server's directory to the user nobody";
        return;
      }
      as_ = {"runuser", "-u", "nobody", "--"};
    }
    RunResult init =
        run(bin_ + "/initdb", {"-D", data_, "-U", "hut", "-A", "trust", "-E", "UTF8", "--no-sync"});
    if (init.status != 0) {
      get_why() = "initdb failed: " + init.err;
      return;
    }
    started_ = start();
    if (!started_) {
      get_why() = "pg_ctl start failed: " + read_file(dir_.file("log"));
      return;
    }
    ok_ = true;
  }

  static std::string& get_why() {
    static std::string why;
    return why;
  }

  static std::string find_bin() {
    std::error_code ec;
    std::string best;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      std::string bin = e.path().string() + "/bin";
      if (std::filesystem::exists(bin + "/initdb") && std::filesystem::exists(bin + "/pg_ctl")) best = bin;
    }
    return best;
  }

  std::string options() const {
    return "-c listen_addresses='' -c unix_socket_directories=" + sock_ +
           " -c max_connections=200 -c fsync=on";
  }

  RunResult run(const std::string& prog, const std::vector<std::string>& args) {
    std::vector<std::string> argv = as_;
    argv.push_back(prog);
    argv.insert(argv.end(), args.begin(), args.end());
    return run_process(argv);
  }

  bool ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"-D", data_});
    return run(bin_ + "/pg_ctl", args).status == 0;
  }

  void exec_admin(const std::string& sql) { exec(url("postgres"), sql); }

  TempDir dir_;
  std::string bin_, data_, sock_;
  std::vector<std::string> as_;
  bool ok_ = false;
  bool started_ = false;
  int databases_ = 0;
};

}  // namespace hut::test

#endif  // HUTOPIA_TEST_STORE_PG_SERVER_H_

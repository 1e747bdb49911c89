// A connection of the PostgreSQL store, through libpq: statements written
// with SQLite's ?N parameters (sql.h) are prepared once per connection with
// $N, run with their parameters typed by the binds, and their rows read as
// text. A connection that broke is opened again at the next transaction.
// Every call blocks: connections are used on the store's own threads (and at
// start-up), never on the loop. Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_PG_CONN_H_
#define HUTOPIA_STORE_PG_CONN_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store/executor.h"
#include "store/query_base.h"
#include "store/sql.h"

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

namespace hut::pg {

using sql::Unit;

// The Status of a failed libpq result or connection: a key conflict is
// kAlreadyExists, a lost or refused connection (or a server shutting down)
// kUnavailable, a deadlock or serialization failure kUnavailable with
// retryable() true, other errors kInternal. `what` comes first.
Status result_status(PGconn* conn, PGresult* res, std::string_view what);

class Query;

// Used by one thread at a time.
class Conn : public store::WorkerConn, public sql::RowCaches {
 public:
  using Query = pg::Query;
  class Transaction;
  // The resume credentials of user ?1 to drop: expired at ?2, or past the
  // newest ?3.
  static constexpr const char* kStaleResumeSql =
      "DELETE FROM resume WHERE user_id = ?1 AND (expires_ts <= ?2 OR hash IN (SELECT hash FROM resume "
      "WHERE user_id = ?1 ORDER BY expires_ts DESC OFFSET ?3))";
  // Writes may be chained in one statement with WITH (a post is one round
  // trip to the server).
  static constexpr bool kWritesInWith = true;

  // Connects to `conninfo` (a postgres:// URL or key=value words; libpq's
  // PG* environment fills what it leaves out).
  static Result<std::unique_ptr<Conn>> connect(const std::string& conninfo);
  ~Conn() override;
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  PGconn* raw() const { return conn_; }
  // Runs `sql` (statements without parameters; rows dropped).
  Status exec(const char* sql);
  // Rows changed by the last statement.
  int64_t changes() const { return changes_; }
  // Connects again when the connection broke; kUnavailable when it cannot.
  Status ensure_open();

  // store::WorkerConn
  Status begin_batch() override;
  Status savepoint() override;
  Status release(bool keep) override;
  Status still_open() override { return Status(); }
  // A savepoint is two more round trips to the server per write.
  bool cheap_savepoints() const override { return false; }
  Status commit() override;
  void abandon() override;
  bool retryable(const Status& s) const override;
  Status begin_read() override;
  Status end_read() override;

 private:
  friend class pg::Query;
  Conn() = default;
  // Starts a transaction with `sql`, connecting again first when needed.
  Status begin(const char* sql);
  // The name of the statement prepared for `sql` (keyed by its address) with
  // parameter types `types`; prepares it on first use.
  Result<std::string> prepared(const char* sql, const std::vector<unsigned>& types);

  PGconn* conn_ = nullptr;
  std::string conninfo_;
  std::unordered_map<const char*, std::string> stmts_;
  int64_t changes_ = 0;
  // The SQLSTATE of the last error, for retryable().
  std::string last_state_;
};

// An explicit read transaction (for load_state): begin() starts it, commit()
// ends it, and one still open when the object goes out of scope is rolled
// back.
class Conn::Transaction {
 public:
  explicit Transaction(Conn& c) : c_(c) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Status begin();
  Status commit();

 private:
  Conn& c_;
  bool open_ = false;
};

// One execution of a statement, with the same calls as SqliteQuery: binds,
// then step() (runs it on the first call) or run(). The first failing call is
// kept in status().
class Query : public QueryBase<Query> {
 public:
  Query(Conn& c, const char* sql) : c_(c), sql_(sql) {}

  // Runs the statement on the first call.
  bool step();

  int64_t i64(int col) const;
  std::string str(int col) const;
  std::string blob(int col) const;

 private:
  struct ResultDeleter {
    void operator()(PGresult* res) const;
  };
  struct Param {
    std::optional<std::string> value;
    unsigned type = 0;  // an OID; 0: let the server decide
    bool binary = false;
  };
  friend class QueryBase<Query>;
  void set(int i, const BindValue& v);
  bool is_null(int col) const;
  void execute();

  Conn& c_;
  const char* sql_;
  std::vector<Param> params_;
  std::unique_ptr<PGresult, ResultDeleter> res_;
  bool executed_ = false;
  int row_ = -1;
};

}  // namespace hut::pg

#endif  // HUTOPIA_STORE_PG_CONN_H_

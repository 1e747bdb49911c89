#include "store/pg_conn.h"

#include <libpq-fe.h>

#include <cstdlib>
#include <cstring>

namespace hut::pg {
namespace {

// Type OIDs of the parameters the store binds (pg_type.h).
constexpr unsigned kInt8Oid = 20;
constexpr unsigned kTextOid = 25;
constexpr unsigned kByteaOid = 17;

bool starts_with(const char* s, const char* prefix) {
  return s != nullptr && std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

// `sql` with each ?N outside quotes written $N.
std::string dollar_params(const char* sql) {
  std::string out;
  bool quoted = false;
  for (const char* p = sql; *p != '\0'; ++p) {
    if (*p == '\'') quoted = !quoted;
    out += (!quoted && *p == '?') ? '$' : *p;
  }
  return out;
}

}  // namespace

Status result_status(PGconn* conn, PGresult* res, std::string_view what) {
  const char* state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = std::string(what) + ": ";
  const char* detail = res != nullptr ? PQresultErrorMessage(res) : nullptr;
  msg += (detail != nullptr && *detail != '\0') ? detail : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (starts_with(state, "23505")) return Status::already_exists(msg);
  if (PQstatus(conn) != CONNECTION_OK || state == nullptr || starts_with(state, "08") ||
      starts_with(state, "57P") || starts_with(state, "40")) {
    return Status::unavailable(msg);
  }
  return Status::internal(msg);
}

Result<std::unique_ptr<Conn>> Conn::connect(const std::string& conninfo) {
  std::unique_ptr<Conn> c(new Conn());
  c->conninfo_ = conninfo;
  HUT_RETURN_IF_ERROR(c->ensure_open());
  return c;
}

Conn::~Conn() {
  if (conn_ != nullptr) PQfinish(conn_);
}

Status Conn::ensure_open() {
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return Status();
  if (conn_ != nullptr) PQfinish(conn_);
  stmts_.clear();
  clear_caches();
  conn_ = PQconnectdb(conninfo_.c_str());
  if (conn_ == nullptr) return Status::resource_exhausted("store: libpq could not allocate a connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn_);
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    return Status::unavailable("store: cannot connect to PostgreSQL: " + msg);
  }
  // Notices (such as "relation exists, skipping") are not errors.
  PQsetNoticeProcessor(
      conn_, [](void*, const char*) {}, nullptr);
  return exec("SET synchronous_commit = on");
}

Status Conn::exec(const char* sql) {
  PGresult* res = PQexec(conn_, sql);
  ExecStatusType st = PQresultStatus(res);
  Status s;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    s = result_status(conn_, res, "store");
    const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    last_state_ = state != nullptr ? state : "";
  }
  PQclear(res);
  return s;
}

Result<std::string> Conn::prepared(const char* sql, const std::vector<unsigned>& types) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second;
  std::string name = "s" + std::to_string(stmts_.size());
  std::string text = dollar_params(sql);
  PGresult* res = PQprepare(conn_, name.c_str(), text.c_str(), static_cast<int>(types.size()),
                            reinterpret_cast<const Oid*>(types.data()));
  Status s;
  if (PQresultStatus(res) != PGRES_COMMAND_OK) s = result_status(conn_, res, "store: prepare");
  PQclear(res);
  HUT_RETURN_IF_ERROR(s);
  stmts_.emplace(sql, name);
  return name;
}

Status Conn::begin(const char* sql) {
  HUT_RETURN_IF_ERROR(ensure_open());
  Status s = exec(sql);
  // A connection the server dropped while it sat idle (a restart) is only
  // found out now; nothing was done yet, so connect again and begin anew.
  if (!s.ok() && PQstatus(conn_) != CONNECTION_OK) {
    HUT_RETURN_IF_ERROR(ensure_open());
    s = exec(sql);
  }
  return s;
}

Status Conn::begin_batch() { return begin("BEGIN"); }

Status Conn::savepoint() { return exec("SAVEPOINT w"); }

Status Conn::release(bool keep) {
  if (!keep) {
    clear_caches();
    HUT_RETURN_IF_ERROR(exec("ROLLBACK TO SAVEPOINT w"));
  }
  return exec("RELEASE SAVEPOINT w");
}

Status Conn::commit() {
  PGresult* res = PQexec(conn_, "COMMIT");
  Status s;
  if (PQresultStatus(res) != PGRES_COMMAND_OK) {
    s = result_status(conn_, res, "store: commit");
  } else if (std::strcmp(PQcmdStatus(res), "COMMIT") != 0) {
    // COMMIT of a failed transaction rolls it back.
    s = Status::internal("store: the transaction was rolled back");
  }
  PQclear(res);
  return s;
}

void Conn::abandon() {
  clear_caches();
  if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
    PQclear(PQexec(conn_, "ROLLBACK"));
  }
}

bool Conn::retryable(const Status& s) const {
  return s.code() == Status::Code::kUnavailable && (last_state_ == "40001" || last_state_ == "40P01") &&
         PQstatus(conn_) == CONNECTION_OK;
}

Status Conn::begin_read() { return begin("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); }

Status Conn::end_read() { return exec("COMMIT"); }

Conn::Transaction::~Transaction() {
  if (open_) c_.abandon();
}

Status Conn::Transaction::begin() {
  HUT_RETURN_IF_ERROR(c_.begin_read());
  open_ = true;
  return Status();
}

Status Conn::Transaction::commit() {
  open_ = false;
  return c_.end_read();
}

void Query::ResultDeleter::operator()(PGresult* res) const { PQclear(res); }

void Query::set(int i, const BindValue& v) {
  if (static_cast<size_t>(i) > params_.size()) params_.resize(static_cast<size_t>(i));
  Param& p = params_[static_cast<size_t>(i) - 1];
  switch (v.kind) {
    case BindValue::Kind::kNull:
      p = Param{std::nullopt, 0, false};
      break;
    case BindValue::Kind::kInt:
      p = Param{std::to_string(v.num), kInt8Oid, false};
      break;
    case BindValue::Kind::kText:
      p = Param{std::string(v.bytes), kTextOid, false};
      break;
    case BindValue::Kind::kBlob:
      p = Param{std::string(v.bytes), kByteaOid, true};
      break;
  }
}

void Query::execute() {
  executed_ = true;
  if (!status_.ok()) return;
  std::vector<unsigned> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const Param& p : params_) {
    types.push_back(p.type);
    values.push_back(p.value ? p.value->data() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
  auto name = c_.prepared(sql_, types);
  if (!name.ok()) {
    status_ = name.status();
    return;
  }
  res_.reset(PQexecPrepared(c_.conn_, name->c_str(), static_cast<int>(values.size()), values.data(),
                            lengths.data(), formats.data(), 0));
  ExecStatusType st = PQresultStatus(res_.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    status_ = result_status(c_.conn_, res_.get(), "store");
    const char* state = PQresultErrorField(res_.get(), PG_DIAG_SQLSTATE);
    c_.last_state_ = state != nullptr ? state : "";
    return;
  }
  const char* tuples = PQcmdTuples(res_.get());
  c_.changes_ = (tuples != nullptr && *tuples != '\0') ? std::strtoll(tuples, nullptr, 10) : 0;
}

bool Query::step() {
  if (!executed_) execute();
  if (!status_.ok() || res_ == nullptr) return false;
  ++row_;
  return row_ < PQntuples(res_.get());
}

int64_t Query::i64(int col) const { return std::strtoll(PQgetvalue(res_.get(), row_, col), nullptr, 10); }

bool Query::is_null(int col) const { return PQgetisnull(res_.get(), row_, col) != 0; }

std::string Query::str(int col) const {
  return std::string(PQgetvalue(res_.get(), row_, col),
                     static_cast<size_t>(PQgetlength(res_.get(), row_, col)));
}

std::string Query::blob(int col) const {
  size_t len = 0;
  unsigned char* bytes =
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(res_.get(), row_, col)), &len);
  if (bytes == nullptr) return std::string();
  std::string out(reinterpret_cast<const char*>(bytes), len);
  PQfreemem(bytes);
  return out;
}

}  // namespace hut::pg

// What the statement runners of both stores (SqliteQuery, pg::Query) have in
// common, written once over the calls each of them defines: the first failing
// call kept in status(), and the conveniences built on binds and steps.
// Internal to libhutopia/store.
#ifndef HUTOPIA_STORE_QUERY_BASE_H_
#define HUTOPIA_STORE_QUERY_BASE_H_

#include <hutopia/status.h>

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace hut {

// One parameter as a bind gives it; text and blob views must outlive the
// query.
struct BindValue {
  enum class Kind { kNull, kInt, kText, kBlob };
  Kind kind = Kind::kNull;
  int64_t num = 0;
  std::string_view bytes;
};

// Derived provides set(int, const BindValue&) (a parameter, numbered from
// 1), step() (true with a row, false when done or failed) and the column
// readers i64, is_null, str and blob (is_null may be private); it keeps its first failure in status_.
template <class Derived>
class QueryBase {
 public:
  QueryBase(const QueryBase&) = delete;
  QueryBase& operator=(const QueryBase&) = delete;

  Derived& bind(int i, int64_t v) { return put(i, {BindValue::Kind::kInt, v, {}}); }
  Derived& bind(int i, std::string_view v) { return put(i, {BindValue::Kind::kText, 0, v}); }
  Derived& bind_blob(int i, std::string_view v) { return put(i, {BindValue::Kind::kBlob, 0, v}); }
  Derived& bind_null(int i) { return put(i, {}); }
  // Empty text binds NULL.
  Derived& bind_or_null(int i, std::string_view v) { return v.empty() ? bind_null(i) : bind(i, v); }
  // No value binds NULL.
  Derived& bind(int i, std::optional<int64_t> v) { return v ? bind(i, *v) : bind_null(i); }

  // Steps past the rows left; the status after them.
  const Status& drain() {
    while (self().step()) {
    }
    return status_;
  }
  // Runs a statement that returns no row (or drains the rows it returns).
  Status run() { return drain(); }
  const Status& status() const { return status_; }

  // The column of the current row as an integer, nothing when it is NULL.
  std::optional<int64_t> opt_i64(int col) const {
    if (self().is_null(col)) return std::nullopt;
    return self().i64(col);
  }
  // The status when step() found no row: the error, or `missing`.
  Status no_row(Status missing) const { return status_.ok() ? std::move(missing) : status_; }

 protected:
  QueryBase() = default;
  ~QueryBase() = default;

  Status status_;

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  const Derived& self() const { return static_cast<const Derived&>(*this); }
  Derived& put(int i, const BindValue& v) {
    self().set(i, v);
    return self();
  }
};

}  // namespace hut

#endif  // HUTOPIA_STORE_QUERY_BASE_H_

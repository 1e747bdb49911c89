// Status and Result: errors as values.
//
// A Status is either ok or a code with a message for a person. An ok Status
// holds no allocation, so returning one is as cheap as returning a pointer.
// Result<T> holds either a T or a non-ok Status. Nothing in the public C++ API
// of libhutopia throws; failures come back as one of these.
//
// Thread safety: a Status or Result may be read from several threads at once;
// writing one needs external synchronization, as for any value type.
#ifndef HUTOPIA_STATUS_H_
#define HUTOPIA_STATUS_H_

#include <cassert>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hut {

class Status {
 public:
  enum class Code : int {
    kOk = 0,
    kInvalidArgument = 1,     // the caller's input is malformed
    kNotFound = 2,            // the thing named does not exist
    kAlreadyExists = 3,       // a conflict with something that exists
    kPermissionDenied = 4,    // known caller, not allowed
    kUnauthenticated = 5,     // the caller could not be identified
    kResourceExhausted = 6,   // a limit was reached
    kFailedPrecondition = 7,  // the system is not in a state for this
    kUnavailable = 8,         // try again later
    kIOError = 9,             // the operating system said no
    kCorruption = 10,         // stored data is damaged
    kNotSupported = 11,       // a valid request that this build cannot do
    kInternal = 12,           // a bug
  };

  Status() noexcept = default;
  Status(const Status& other) : state_(other.state_ ? std::make_unique<State>(*other.state_) : nullptr) {}
  Status& operator=(const Status& other) {
    if (this != &other) state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
    return *this;
  }
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  static Status ok_status() { return Status(); }
  static Status invalid_argument(std::string_view msg) { return Status(Code::kInvalidArgument, msg); }
  static Status not_found(std::string_view msg) { return Status(Code::kNotFound, msg); }
  static Status already_exists(std::string_view msg) { return Status(Code::kAlreadyExists, msg); }
  static Status permission_denied(std::string_view msg) { return Status(Code::kPermissionDenied, msg); }
  static Status unauthenticated(std::string_view msg) { return Status(Code::kUnauthenticated, msg); }
  static Status resource_exhausted(std::string_view msg) { return Status(Code::kResourceExhausted, msg); }
  static Status failed_precondition(std::string_view msg) { return Status(Code::kFailedPrecondition, msg); }
  static Status unavailable(std::string_view msg) { return Status(Code::kUnavailable, msg); }
  static Status io_error(std::string_view msg) { return Status(Code::kIOError, msg); }
  static Status corruption(std::string_view msg) { return Status(Code::kCorruption, msg); }
  static Status not_supported(std::string_view msg) { return Status(Code::kNotSupported, msg); }
  static Status internal(std::string_view msg) { return Status(Code::kInternal, msg); }
  // A failed Status of any code but kOk (kOk gives kInternal).
  static Status from_code(Code code, std::string_view msg) {
    return Status(code == Code::kOk ? Code::kInternal : code, msg);
  }

  bool ok() const noexcept { return state_ == nullptr; }
  Code code() const noexcept { return state_ ? state_->code : Code::kOk; }
  // The message for a person; empty when ok. Borrowed: valid while *this lives.
  std::string_view message() const noexcept {
    return state_ ? std::string_view(state_->message) : std::string_view();
  }

  // "OK", or the code's name, a colon and the message.
  std::string to_string() const {
    if (ok()) return "OK";
    std::string out(code_name(code()));
    out += ": ";
    out += state_->message;
    return out;
  }

  static std::string_view code_name(Code code) noexcept {
    switch (code) {
      case Code::kOk:
        return "OK";
      case Code::kInvalidArgument:
        return "Invalid argument";
      case Code::kNotFound:
        return "Not found";
      case Code::kAlreadyExists:
        return "Already exists";
      case Code::kPermissionDenied:
        return "Permission denied";
      case Code::kUnauthenticated:
        return "Unauthenticated";
      case Code::kResourceExhausted:
        return "Resource exhausted";
      case Code::kFailedPrecondition:
        return "Failed precondition";
      case Code::kUnavailable:
        return "Unavailable";
      case Code::kIOError:
        return "IO error";
      case Code::kCorruption:
        return "Corruption";
      case Code::kNotSupported:
        return "Not supported";
      case Code::kInternal:
        return "Internal";
    }
    return "Unknown";
  }

  bool is_not_found() const noexcept { return code() == Code::kNotFound; }
  bool is_invalid_argument() const noexcept { return code() == Code::kInvalidArgument; }
  bool is_unauthenticated() const noexcept { return code() == Code::kUnauthenticated; }

 private:
  struct State {
    Code code;
    std::string message;
  };
  Status(Code code, std::string_view msg) : state_(std::make_unique<State>(State{code, std::string(msg)})) {
    assert(code != Code::kOk);
  }
  std::unique_ptr<State> state_;  // nullptr means ok
};

// Holds a T or a non-ok Status. Constructing a Result from an ok Status is a
// bug and becomes an internal error.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok()) v_ = Status::internal("Result built from an ok Status");
  }

  bool ok() const noexcept { return std::holds_alternative<T>(v_); }
  // The error; an ok Status when the Result holds a value.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  // Precondition: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T value_or(T fallback) const& { return ok() ? std::get<T>(v_) : std::move(fallback); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace hut

// Returns early from the enclosing function when `expr` is not ok.
#define HUT_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::hut::Status hut_status_ = (expr);        \
    if (!hut_status_.ok()) return hut_status_; \
  } while (0)

#endif  // HUTOPIA_STATUS_H_

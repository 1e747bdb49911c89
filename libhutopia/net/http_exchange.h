// One HTTP request on a listener of the network layer (net/server.h) and,
// once given, its response: the request as assembled (headers, a bounded
// body in memory or written to a file), and the response from memory or
// read from a file piece by piece, possibly later than the request.
//
// Thread: the loop thread. Ownership: HttpExchange objects are shared: the
// handler may keep one to answer later; once its connection is gone,
// respond() is a no-op.
#ifndef HUTOPIA_NET_HTTP_EXCHANGE_H_
#define HUTOPIA_NET_HTTP_EXCHANGE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <hutopia/status.h>

#include "net/lws.h"

namespace hut::net {

enum class Listener { kPublic, kAdmin };

// A file sent as a response body, read in pieces as the connection takes
// them. Owns its descriptor; closed when the last holder lets go.
class FileBody {
 public:
  // Opens a regular file read-only; kNotFound when that fails.
  static Result<std::shared_ptr<FileBody>> open(const std::string& path);
  ~FileBody();
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  int fd() const { return fd_; }
  uint64_t size() const { return size_; }

 private:
  FileBody(int fd, uint64_t size) : fd_(fd), size_(size) {}
  int fd_;
  uint64_t size_;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, names as written
  std::string body;
};

// How the body of a request is taken (NetHandler::body_plan).
struct BodyPlan {
  // 0: buffered in HttpExchange::body, up to NetOptions::max_body. Otherwise
  // written as it arrives into a new file in spool_dir (created when
  // missing), up to `limit` bytes.
  size_t limit = 0;
  std::string spool_dir;
};

class NetServer;

// One HTTP request and, once given, its response.
class HttpExchange {
 public:
  Listener listener = Listener::kPublic;
  std::string method;  // "GET", "POST", ...
  std::string path;    // as lws decoded it, without the query
  std::string query;   // without "?", may be empty
  // The query's pieces between "&" as lws decoded them, each split at its
  // first "=" (a piece without one has the value ""): unlike `query`, a
  // decoded "&" or "=" inside a name or value stays where it was.
  std::vector<std::pair<std::string, std::string>> query_params;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
  std::string peer;  // the client's address, as lws_get_peer_simple() gives it
  // The request's id: the client's X-Request-Id when it is 1 to 64 letters,
  // digits, '.', '_' or '-', else 16 random bytes in hex. Every log line
  // about the request carries it, and the response returns it in
  // X-Request-Id (unless the handler set that header itself).
  std::string request_id;
  uint64_t start_ms = 0;  // uv_now when the request arrived
  // For a body written to disk (BodyPlan): the file holding all of it and its
  // size. It is removed when the exchange ends unless it was renamed away.
  std::string body_file;
  uint64_t body_file_size = 0;

  ~HttpExchange() { drop_spool(); }

  // The first header with this lower-case name, or "".
  std::string_view header(std::string_view name) const;
  // Sends the response. Only the first call counts; dropped when the
  // connection closed meanwhile. With `file`, the body is that file's
  // content, read as the connection takes it, and response.body is ignored.
  void respond(HttpResponse response, std::shared_ptr<FileBody> file = nullptr);
  bool responded() const { return responded_; }
  bool connected() const { return wsi_ != nullptr; }

 private:
  friend class NetServer;
  NetServer* server_ = nullptr;
  struct lws* wsi_ = nullptr;
  bool responded_ = false;
  bool close_after_ = false;  // the request body was refused: close the connection
  bool headers_sent_ = false;
  size_t body_expected_ = 0;
  size_t body_budget_ = 0;  // counted in NetServer::body_bytes_ until the exchange ends
  size_t sent_ = 0;
  HttpResponse response_;
  std::shared_ptr<FileBody> response_file_;
  // The body being written to body_file.
  int spool_fd_ = -1;
  size_t spool_limit_ = 0;
  size_t spool_budget_ = 0;  // counted in NetServer::spool_bytes_ until the exchange ends
  uint64_t spool_dev_ = 0, spool_ino_ = 0;
  void drop_spool();
};

}  // namespace hut::net

#endif  // HUTOPIA_NET_HTTP_EXCHANGE_H_

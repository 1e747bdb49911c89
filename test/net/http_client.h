// A plain HTTP/1.1 client over a blocking loopback socket for the tests. The
// request target is sent byte for byte as given (no normalization), so tests
// can send traversal attempts exactly as an attacker would.
#ifndef HUTOPIA_TEST_NET_HTTP_CLIENT_H_
#define HUTOPIA_TEST_NET_HTTP_CLIENT_H_

#include <string>
#include <utility>
#include <vector>

namespace hut::test {

struct HttpResult {
  int status = 0;                                            // 0: no answer
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const;
};

HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers = {},
                        const std::string& body = "", int timeout_ms = 5000);

inline HttpResult http_get(int port, const std::string& target,
                           const std::vector<std::pair<std::string, std::string>>& headers = {}) {
  return http_request(port, "GET", target, headers);
}

}  // namespace hut::test

#endif  // HUTOPIA_TEST_NET_HTTP_CLIENT_H_

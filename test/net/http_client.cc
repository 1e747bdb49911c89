#include "net/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstring>

namespace hut::test {

std::string HttpResult::header(const std::string& name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

HttpResult http_request(int port, const std::string& method, const std::string& target,
                        const std::vector<std::pair<std::string, std::string>>& headers,
                        const std::string& body, int timeout_ms) {
  HttpResult r;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return r;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return r;
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\n";
  bool has_encoding = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    if (k == "Transfer-Encoding") has_encoding = true;
  }
  if (!has_encoding && (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH"))
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  req += "\r\n" + body;
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string in;
  char buf[65536];
  size_t header_end = std::string::npos;
  long content_length = -1;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    if (header_end == std::string::npos) {
      header_end = in.find("\r\n\r\n");
      if (header_end != std::string::npos) {
        std::string head = in.substr(0, header_end);
        size_t line_end = head.find("\r\n");
        std::string status_line = head.substr(0, line_end);
        if (status_line.size() >= 12) r.status = std::atoi(status_line.c_str() + 9);
        size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
        while (pos < head.size()) {
          size_t e = head.find("\r\n", pos);
          if (e == std::string::npos) e = head.size();
          std::string line = head.substr(pos, e - pos);
          size_t colon = line.find(':');
          if (colon != std::string::npos) {
            std::string k = line.substr(0, colon);
            for (char& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            std::string v = line.substr(colon + 1);
            while (!v.empty() && v.front() == ' ') v.erase(0, 1);
            if (k == "content-length") content_length = std::atol(v.c_str());
            r.headers.emplace_back(std::move(k), std::move(v));
          }
          pos = e + 2;
        }
      }
    }
    if (header_end != std::string::npos && content_length >= 0 &&
        in.size() >= header_end + 4 + static_cast<size_t>(content_length))
      break;
  }
  close(fd);
  if (header_end != std::string::npos) {
    r.body = in.substr(header_end + 4);
    if (content_length >= 0 && r.body.size() > static_cast<size_t>(content_length))
      r.body.resize(static_cast<size_t>(content_length));
  }
  return r;
}

}  // namespace hut::test

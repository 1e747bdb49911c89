// Fuzzes the relay's reading of a /login request (relay::parse_login_fields):
// a GET's query, as lws hands it over (already percent-decoded, arguments
// joined by '&'), and a POST's x-www-form-urlencoded body. The input is read
// as a GET query and as a POST body; then its first three NUL-separated parts
// are encoded as a form (space, return, username) and must read back as
// themselves.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "relay/rules.h"
#include "space/routes.h"

namespace {

size_t count_fields(std::string_view q, std::string_view prefix) {
  size_t n = 0;
  for (size_t start = 0; start <= q.size();) {
    size_t amp = q.find('&', start);
    std::string_view f =
        q.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    if (f.substr(0, prefix.size()) == prefix) ++n;
    start = amp == std::string_view::npos ? q.size() + 1 : amp + 1;
  }
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  // A GET query: nothing is decoded; the space is one argument, the return
  // address one stretch of the query.
  hut::relay::LoginFields get = hut::relay::parse_login_fields(in, false);
  size_t spaces = count_fields(in, "space="), returns = count_fields(in, "return=");
  if (get.have_space != (spaces > 0) || get.have_return != (returns > 0)) std::abort();
  if (get.duplicate != (spaces > 1 || returns > 1) || get.bad_encoding) std::abort();
  if (get.space.find('&') != std::string::npos || in.find(get.space) == std::string_view::npos) std::abort();
  if (in.find(get.ret) == std::string_view::npos) std::abort();
  if (!get.username.empty() || !get.password.empty() || !get.url.empty() || !get.tag.empty()) std::abort();

  // A POST body: any bytes, no crash; without escapes, values are substrings.
  hut::relay::LoginFields post = hut::relay::parse_login_fields(in, true);
  if (in.find_first_of("%+") == std::string_view::npos) {
    if (post.bad_encoding) std::abort();
    for (const std::string* v : {&post.space, &post.ret, &post.username, &post.password, &post.tag})
      if (in.find(*v) == std::string_view::npos) std::abort();
  }

  // A form the relay's own page would send reads back as itself.
  std::string_view parts[3];
  std::string_view rest = in;
  for (auto& part : parts) {
    size_t nul = rest.find('\0');
    part = rest.substr(0, nul);
    rest = nul == std::string_view::npos ? std::string_view() : rest.substr(nul + 1);
  }
  std::string body = "space=" + hut::space::query_escape(parts[0]) +
                     "&return=" + hut::space::query_escape(parts[1]) +
                     "&username=" + hut::space::query_escape(parts[2]) + "&action=login";
  hut::relay::LoginFields form = hut::relay::parse_login_fields(body, true);
  if (form.bad_encoding || form.duplicate || !form.have_space || !form.have_return) std::abort();
  if (form.space != parts[0] || form.ret != parts[1] || form.username != parts[2] || form.action != "login")
    std::abort();
  return 0;
}

// The relay's rules and request parsing, free of I/O so that they can be
// tested and fuzzed alone: account, name and space rules, the JSON bodies of
// the API, form decoding, the strict URL reading behind the login page's
// redirect check, and the avatar format checks.
// Thread safety: any thread; nothing here has state.
#ifndef HUTOPIA_RELAY_RULES_H_
#define HUTOPIA_RELAY_RULES_H_

#include <optional>
#include <string>
#include <string_view>

namespace hut::relay {

// Each returns "" when `s` is fine, else the rule it breaks (for the message).
std::string username_rule_broken(const std::string& s);   // 3-32 of a-z 0-9 _ . -, a letter first
std::string password_rule_broken(const std::string& s);   // 8-1024 characters
std::string name_rule_broken(const std::string& s);       // 1-64 characters, no control characters
std::string space_id_rule_broken(const std::string& s);   // 1-64 of a-z 0-9 _ . -
std::string space_url_rule_broken(const std::string& s);  // http(s), a host, no userinfo/query/fragment

// A refused body: the error code and the message naming the rule.
struct BodyError {
  std::string code;
  std::string message;
};

// The JSON bodies of the API, each an object:
// - POST /api/v1/accounts: {username, password, name?}; the rules are checked.
// - POST /api/v1/sessions: {username, password}, both strings (no rules: a
//   login only compares).
// - PATCH /api/v1/me: {name?}.
// - POST /api/v1/spaces: {name, url}; the rules are checked, and the url must
//   pass parse_url. An `id` is refused: the relay assigns space ids.
// - PATCH /api/v1/spaces/<id>: {name?, url?}, with the same rules.
struct AccountBody {
  std::string username, password;
  std::optional<std::string> name;
};
struct CredentialsBody {
  std::string username, password;
};
struct ProfileBody {
  std::optional<std::string> name;
};
struct SpaceBody {
  std::string name, url;
};
struct SpacePatchBody {
  std::optional<std::string> name, url;
};

// Reads `body` into `out`; false with `error` set when it breaks a rule.
bool parse_body(std::string_view body, AccountBody* out, BodyError* error);
bool parse_body(std::string_view body, CredentialsBody* out, BodyError* error);
bool parse_body(std::string_view body, ProfileBody* out, BodyError* error);
bool parse_body(std::string_view body, SpaceBody* out, BodyError* error);
bool parse_body(std::string_view body, SpacePatchBody* out, BodyError* error);

// A space id as the relay assigns it: `bytes` (16 in relayd: 128 bits) as
// lower-case base32 (RFC 4648 alphabet, no padding), which the space id
// rule accepts.
std::string space_id_from_bytes(std::string_view bytes);

std::string html_escape(std::string_view s);

// The fields of a /login request. A GET's query comes with each argument
// already percent-decoded (lws does it) and is not decoded again: a fragment
// after return= that is neither space= nor return= belonged to the return
// URL (an encoded '&'). A POST's body is x-www-form-urlencoded and decoded
// here; fields other than those below are ignored.
struct LoginFields {
  std::string space, ret, username, password, name, action, url, tag;
  bool have_space = false, have_return = false, have_url = false;
  bool duplicate = false;     // space, return or url given twice
  bool bad_encoding = false;  // a broken escape in a POST body
};
LoginFields parse_login_fields(std::string_view text, bool form_body);

// A strict reading of an absolute http(s) URL (hut::parse_strict_web_url):
// printable ASCII only, no backslash, no userinfo, no percent sign in the
// authority, no fragment, a port from 1 to 65535, no "." or ".." segment and
// no encoded dot, slash or backslash in the path.
struct ParsedUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // lower case; an IPv6 address in brackets
  std::string port;    // decimal, the scheme's default when absent
  std::string path;    // "/" at least, without the query
};
bool parse_url(std::string_view url, ParsedUrl* out);
// Whether `url` lies under `base`: same scheme, host and port, and a path
// that is base's path or continues it at a segment boundary.
bool url_is_under(std::string_view url, std::string_view base);

// Whether `b` is structurally a PNG, or a JPEG (see docs/relay.md).
bool is_png(std::string_view b);
bool is_jpeg(std::string_view b);

}  // namespace hut::relay

#endif  // HUTOPIA_RELAY_RULES_H_

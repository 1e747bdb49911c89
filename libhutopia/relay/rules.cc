#include "relay/rules.h"

#include <cjson/cJSON.h>

#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "token/json.h"
#include "util/url.h"

namespace hut::relay {

// Usernames: 3-32 of a-z 0-9 _ . -, starting with a letter.
std::string username_rule_broken(const std::string& u) {
  if (u.size() < 3 || u.size() > 32) return "a username has 3 to 32 characters";
  if (u[0] < 'a' || u[0] > 'z') return "a username starts with a letter a-z";
  for (char c : u) {
    bool good = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!good) return "a username has only the characters a-z 0-9 _ . -";
  }
  return {};
}

// Counts UTF-8 code points (the body passed cJSON, so it is valid UTF-8).
namespace {

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace

std::string password_rule_broken(const std::string& p) {
  size_t n = utf8_length(p);
  if (n < 8 || n > 1024) return "a password has 8 to 1024 characters";
  return {};
}

std::string name_rule_broken(const std::string& n) {
  if (n.empty() || utf8_length(n) > 64) return "a name has 1 to 64 characters";
  for (unsigned char c : n)
    if (c < 0x20 || c == 0x7f) return "a name has no control characters";
  return {};
}

// Space ids: 1-64 of a-z 0-9 _ . - (they appear in paths and in `aud`).
std::string space_id_rule_broken(const std::string& id) {
  if (id.empty() || id.size() > 64) return "a space id has 1 to 64 characters";
  for (char c : id) {
    bool good = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!good) return "a space id has only the characters a-z 0-9 _ . -";
  }
  return {};
}

// A space URL: http or https, a host, no userinfo, query or fragment.
std::string space_url_rule_broken(const std::string& url) {
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return "a space url starts with http:// or https://";
  }
  if (url.size() > 2048) return "a space url has at most 2048 characters";
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == '\\' || c == '@' || c == '?' || c == '#' || c == 0x7f)
      return "a space url has no spaces, backslashes, userinfo, query or fragment";
  }
  if (rest.empty() || rest[0] == '/' || rest[0] == ':') return "a space url names a host";
  return {};
}

namespace {

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

}  // namespace

// A PNG: the signature, IHDR first (13 bytes, non-zero size), chunks whose
// lengths stay inside the body, at least one IDAT, and IEND as the last bytes.
bool is_png(std::string_view b) {
  static const unsigned char kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() < 8 + 25 + 12 || std::memcmp(b.data(), kSig, 8) != 0) return false;
  const auto* d = reinterpret_cast<const unsigned char*>(b.data());
  size_t pos = 8;
  bool first = true, idat = false;
  while (pos + 12 <= b.size()) {
    uint32_t len = be32(d + pos);
    std::string_view type(b.data() + pos + 4, 4);
    if (len > b.size() - pos - 12) return false;
    if (first) {
      if (type != "IHDR" || len != 13 || be32(d + pos + 8) == 0 || be32(d + pos + 12) == 0) return false;
      first = false;
    }
    if (type == "IDAT") idat = true;
    pos += 12 + len;
    if (type == "IEND") return len == 0 && idat && pos == b.size();
  }
  return false;
}

// A JPEG: SOI, marker segments with lengths inside the body, a frame header
// (SOFn) before the first scan (SOS), and EOI as the last two bytes.
bool is_jpeg(std::string_view b) {
  const auto* d = reinterpret_cast<const unsigned char*>(b.data());
  size_t n = b.size();
  if (n < 4 || d[0] != 0xFF || d[1] != 0xD8 || d[n - 2] != 0xFF || d[n - 1] != 0xD9) return false;
  size_t pos = 2;
  bool frame = false;
  while (pos + 4 <= n) {
    if (d[pos] != 0xFF) return false;
    unsigned char marker = d[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD8 || marker == 0xD9 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7))
      return false;
    size_t len = (size_t{d[pos + 2]} << 8) | d[pos + 3];
    if (len < 2 || pos + 2 + len > n) return false;
    if ((marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC)) {
      if (len < 8) return false;
      frame = true;
    }
    if (marker == 0xDA) return frame && pos + 2 + len <= n - 2;
    pos += 2 + len;
  }
  return false;
}

namespace {

LoginFields login_fields_from_form(std::string_view body) {
  LoginFields out;
  Result<std::vector<std::pair<std::string, std::string>>> fields = parse_form(body);
  if (!fields.ok()) {
    out.bad_encoding = true;
    return out;
  }
  for (auto& [key, value] : *fields) {
    std::string* slot = key == "space"      ? &out.space
                        : key == "return"   ? &out.ret
                        : key == "username" ? &out.username
                        : key == "password" ? &out.password
                        : key == "name"     ? &out.name
                        : key == "action"   ? &out.action
                        : key == "url"      ? &out.url
                        : key == "tag"      ? &out.tag
                                            : nullptr;
    if (slot == nullptr) continue;
    bool* seen = key == "space"    ? &out.have_space
                 : key == "return" ? &out.have_return
                 : key == "url"    ? &out.have_url
                                   : nullptr;
    if (seen != nullptr) {
      if (*seen) out.duplicate = true;
      *seen = true;
    }
    *slot = std::move(value);
  }
  return out;
}

}  // namespace

LoginFields parse_login_fields(std::string_view q, bool form_body) {
  if (form_body) return login_fields_from_form(q);
  LoginFields out;
  bool in_return = false;
  for (size_t start = 0; start <= q.size();) {
    size_t amp = q.find('&', start);
    std::string_view f =
        q.substr(start, amp == std::string_view::npos ? std::string_view::npos : amp - start);
    start = amp == std::string_view::npos ? q.size() + 1 : amp + 1;
    if (f.rfind("space=", 0) == 0) {
      if (out.have_space) out.duplicate = true;
      out.have_space = true;
      out.space = f.substr(6);
      in_return = false;
    } else if (f.rfind("return=", 0) == 0) {
      if (out.have_return) out.duplicate = true;
      out.have_return = true;
      out.ret = f.substr(7);
      in_return = true;
    } else if (in_return) {
      out.ret += '&';
      out.ret += f;
    }
  }
  return out;
}

std::string html_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

bool parse_url(std::string_view url, ParsedUrl* out) {
  Result<Url> u = parse_strict_web_url(url);
  if (!u.ok()) return false;
  out->scheme = u->scheme;
  out->host = u->host_text();
  out->port = std::to_string(u->port);
  out->path = u->path;
  return true;
}

bool url_is_under(std::string_view url, std::string_view base) {
  ParsedUrl u, b;
  if (!parse_url(url, &u) || !parse_url(base, &b)) return false;
  if (u.scheme != b.scheme || u.host != b.host || u.port != b.port) return false;
  if (b.path.back() == '/') return u.path.rfind(b.path, 0) == 0;
  return u.path == b.path || u.path.rfind(b.path + "/", 0) == 0;
}

namespace {

bool fail(BodyError* e, const char* code, std::string message) {
  e->code = code;
  e->message = std::move(message);
  return false;
}

token_json::JsonPtr parse_object(std::string_view body) {
  token_json::JsonPtr json = token_json::parse_strict(body);
  if (json && !cJSON_IsObject(json.get())) json.reset();
  return json;
}

}  // namespace

bool parse_body(std::string_view body, AccountBody* out, BodyError* error) {
  token_json::JsonPtr json = parse_object(body);
  if (!json) return fail(error, "bad_request", "the body is a JSON object");
  const char* username = token_json::get_string(json.get(), "username");
  const char* password = token_json::get_string(json.get(), "password");
  if (!username) return fail(error, "bad_username", "username is a string");
  if (!password) return fail(error, "bad_password", "password is a string");
  out->username = username;
  out->password = password;
  std::string broken = username_rule_broken(out->username);
  if (!broken.empty()) return fail(error, "bad_username", broken);
  broken = password_rule_broken(out->password);
  if (!broken.empty()) return fail(error, "bad_password", broken);
  cJSON* name = cJSON_GetObjectItemCaseSensitive(json.get(), "name");
  out->name.reset();
  if (name && !cJSON_IsNull(name)) {
    if (!cJSON_IsString(name)) return fail(error, "bad_name", "name is a string");
    out->name = name->valuestring;
    broken = name_rule_broken(*out->name);
    if (!broken.empty()) return fail(error, "bad_name", broken);
  }
  return true;
}

bool parse_body(std::string_view body, CredentialsBody* out, BodyError* error) {
  token_json::JsonPtr json = parse_object(body);
  if (!json) return fail(error, "bad_request", "the body is a JSON object");
  const char* username = token_json::get_string(json.get(), "username");
  const char* password = token_json::get_string(json.get(), "password");
  if (!username || !password) return fail(error, "bad_request", "username and password are strings");
  out->username = username;
  out->password = password;
  return true;
}

bool parse_body(std::string_view body, ProfileBody* out, BodyError* error) {
  token_json::JsonPtr json = parse_object(body);
  if (!json) return fail(error, "bad_request", "the body is a JSON object");
  cJSON* name = cJSON_GetObjectItemCaseSensitive(json.get(), "name");
  out->name.reset();
  if (name) {
    if (!cJSON_IsString(name)) return fail(error, "bad_name", "name is a string");
    out->name = name->valuestring;
    std::string broken = name_rule_broken(*out->name);
    if (!broken.empty()) return fail(error, "bad_name", broken);
  }
  return true;
}

namespace {

std::string space_url_broken(const std::string& url) {
  std::string broken = space_url_rule_broken(url);
  ParsedUrl parsed;
  if (broken.empty() && !parse_url(url, &parsed))
    broken = "a space url is an absolute http(s) URL without dot segments or encoded slashes";
  return broken;
}

}  // namespace

bool parse_body(std::string_view body, SpaceBody* out, BodyError* error) {
  token_json::JsonPtr json = parse_object(body);
  if (!json) return fail(error, "bad_request", "the body is a JSON object");
  if (cJSON_GetObjectItemCaseSensitive(json.get(), "id"))
    return fail(error, "bad_request", "the relay assigns space ids: leave out id");
  const char* name = token_json::get_string(json.get(), "name");
  const char* url = token_json::get_string(json.get(), "url");
  if (!name || !url) return fail(error, "bad_request", "name and url are strings");
  out->name = name;
  out->url = url;
  std::string broken = name_rule_broken(out->name);
  if (broken.empty()) broken = space_url_broken(out->url);
  if (!broken.empty()) return fail(error, "bad_space", broken);
  return true;
}

bool parse_body(std::string_view body, SpacePatchBody* out, BodyError* error) {
  token_json::JsonPtr json = parse_object(body);
  if (!json) return fail(error, "bad_request", "the body is a JSON object");
  out->name.reset();
  out->url.reset();
  if (cJSON_GetObjectItemCaseSensitive(json.get(), "id"))
    return fail(error, "bad_request", "a space id cannot be changed");
  for (const char* field : {"name", "url"}) {
    cJSON* item = cJSON_GetObjectItemCaseSensitive(json.get(), field);
    if (!item) continue;
    if (!cJSON_IsString(item)) return fail(error, "bad_request", std::string(field) + " is a string");
    std::string value = item->valuestring;
    std::string broken = field[0] == 'n' ? name_rule_broken(value) : space_url_broken(value);
    if (!broken.empty()) return fail(error, "bad_space", broken);
    (field[0] == 'n' ? out->name : out->url) = std::move(value);
  }
  return true;
}

std::string space_id_from_bytes(std::string_view bytes) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out.push_back(kAlphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(kAlphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

}  // namespace hut::relay

#include "relay.h"

#include <argon2.h>
#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "admin/admin_api.h"
#include "pages.h"
#include "relay/limits.h"
#include "relay/rules.h"
#include "relay_routes.h"
#include "token/json.h"
#include "util/log.h"
#include "util/random.h"

namespace hut::relay {

namespace {

using token_json::JsonPtr;

// argon2id parameters: OWASP's minimum (19 MiB, 2 passes, 1 lane).
constexpr uint32_t kArgonTime = 2;
constexpr uint32_t kArgonMemoryKiB = 19456;
constexpr uint32_t kArgonLanes = 1;
constexpr size_t kArgonSalt = 16;
constexpr size_t kArgonHash = 32;
constexpr int64_t kLeewayS = 30;
const char kCookie[] = "hut_session";

// An argon2id hash, with the parameters above, of a random password nobody
// knows: what a login for an unknown username is verified against. Made once,
// on the first such login (thread-safe static initialization).
const std::string& unknown_user_hash() {
  static const std::string hash = [] {
    unsigned char secret[32];
    unsigned char salt[kArgonSalt];
    char encoded[256] = {0};
    if (RAND_bytes(secret, sizeof(secret)) == 1 && RAND_bytes(salt, sizeof(salt)) == 1)
      argon2id_hash_encoded(kArgonTime, kArgonMemoryKiB, kArgonLanes, secret, sizeof(secret), salt,
                            sizeof(salt), kArgonHash, encoded, sizeof(encoded));
    return std::string(encoded);
  }();
  return hash;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

net::HttpResponse json_response(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

net::HttpResponse error(int status, const char* code, const std::string& message) {
  JsonPtr root(cJSON_CreateObject());
  cJSON* e = cJSON_AddObjectToObject(root.get(), "error");
  cJSON_AddStringToObject(e, "code", code);
  cJSON_AddStringToObject(e, "message", message.c_str());
  return json_response(status, token_json::print(root.get()));
}

net::HttpResponse internal_error(const char* what) {
  log_printf(LogLevel::kError, "relay", "%s", what);
  return error(500, "internal", "the relay could not complete the request");
}

std::string read_file(const std::string& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *ok = false;
    return {};
  }
  std::ostringstream s;
  s << in.rdbuf();
  *ok = true;
  return s.str();
}

Status write_file_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return Status::io_error("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (std::fflush(f) == 0) && ok;
  ok = (fsync(fileno(f)) == 0) && ok;
  std::fclose(f);
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) return Status::io_error("cannot write " + path);
  return Status();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string sha256(std::string_view text) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

// A prepared statement with one owner.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) s = nullptr;
  }
  ~Stmt() { sqlite3_finalize(s); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  bool ok() const { return s != nullptr; }
  void text(int i, std::string_view v) {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void blob(int i, std::string_view v) {
    sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void int64(int i, int64_t v) { sqlite3_bind_int64(s, i, v); }
  int step() { return sqlite3_step(s); }
  std::string col_text(int i) {
    const unsigned char* t = sqlite3_column_text(s, i);
    return t ? std::string(reinterpret_cast<const char*>(t), static_cast<size_t>(sqlite3_column_bytes(s, i)))
             : std::string();
  }
  bool col_null(int i) { return sqlite3_column_type(s, i) == SQLITE_NULL; }
  int64_t col_int(int i) { return sqlite3_column_int64(s, i); }
};

struct User {
  std::string id;
  std::string username;
  std::string name;
  bool has_avatar = false;
};

std::string avatar_url(const std::string& issuer, const User& u) {
  if (!u.has_avatar) return {};
  std::string base = issuer;
  while (!base.empty() && base.back() == '/') base.pop_back();
  return base + "/avatars/" + u.id;
}

void add_user_fields(cJSON* obj, const User& u, const std::string& issuer, bool with_username) {
  cJSON_AddStringToObject(obj, "id", u.id.c_str());
  if (with_username) cJSON_AddStringToObject(obj, "username", u.username.c_str());
  cJSON_AddStringToObject(obj, "name", u.name.c_str());
  if (u.has_avatar) cJSON_AddStringToObject(obj, "avatar", avatar_url(issuer, u).c_str());
}

std::string user_json(const User& u, const std::string& issuer) {
  JsonPtr o(cJSON_CreateObject());
  add_user_fields(o.get(), u, issuer, true);
  return token_json::print(o.get());
}

bool load_user(sqlite3* db, const char* where_sql, std::string_view key, User* out) {
  std::string sql =
      std::string("SELECT id, username, name, avatar_type IS NOT NULL FROM users WHERE ") + where_sql;
  Stmt st(db, sql.c_str());
  if (!st.ok()) return false;
  st.text(1, key);
  if (st.step() != SQLITE_ROW) return false;
  out->id = st.col_text(0);
  out->username = st.col_text(1);
  out->name = st.col_text(2);
  out->has_avatar = st.col_int(3) != 0;
  return true;
}

// The session token of a request: the Bearer header, else the cookie.
std::string session_token(const Relay::Request& req) {
  const std::string& a = req.authorization;
  if (a.size() > 7 && (a.compare(0, 7, "Bearer ") == 0 || a.compare(0, 7, "bearer ") == 0))
    return trim(a.substr(7));
  std::string_view c = req.cookie;
  while (!c.empty()) {
    size_t semi = c.find(';');
    std::string_view part = c.substr(0, semi);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    std::string prefix = std::string(kCookie) + "=";
    if (part.rfind(prefix, 0) == 0) return std::string(part.substr(prefix.size()));
    if (semi == std::string_view::npos) break;
    c.remove_prefix(semi + 1);
  }
  return {};
}

bool has_bearer(const Relay::Request& req) {
  const std::string& a = req.authorization;
  return a.size() > 7 && (a.compare(0, 7, "Bearer ") == 0 || a.compare(0, 7, "bearer ") == 0);
}

// Whether `origin` (an Origin header) is the relay's own: the issuer's
// scheme, host and port.
bool same_origin(const std::string& origin, const std::string& issuer) {
  ParsedUrl o, own;
  return parse_url(origin, &o) && parse_url(issuer, &own) && o.scheme == own.scheme && o.host == own.host &&
         o.port == own.port;
}

// The media type of a Content-Type value: lower case, without parameters.
std::string media_type(std::string_view content_type) {
  std::string out;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (c == ' ' || c == '\t') continue;
    out.push_back(static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c));
  }
  return out;
}

// A state-changing call under /api/v1/ that a page of another origin could
// have made a browser send with the user's cookie (cross-site request
// forgery) gets a refusal; nullopt when the call may go on. Bearer calls
// cannot be forged that way (a browser adds no Authorization header by
// itself). Otherwise an Origin, when present, must be the relay's own; and
// a call that carries the session cookie must have that Origin and, with a
// body, a JSON body (a PNG or JPEG for the avatar), which a form of another
// site cannot send.
std::optional<net::HttpResponse> forgery_refusal(const Relay::Request& req, const std::string& issuer) {
  if (has_bearer(req)) return std::nullopt;
  if (!req.origin.empty() && !same_origin(req.origin, issuer))
    return error(403, "forbidden",
                 "this call comes from another origin; the relay's API takes calls from its own pages "
                 "(Origin " +
                     issuer + ") or with Authorization: Bearer");
  if (session_token(req).empty()) return std::nullopt;
  if (req.origin.empty())
    return error(403, "forbidden",
                 "a call with the session cookie needs the Origin header of the relay's own pages; other "
                 "clients use Authorization: Bearer");
  if (req.body.empty()) return std::nullopt;
  std::string type = media_type(req.content_type);
  if (req.path == "/api/v1/me/avatar") {
    if (type != "image/png" && type != "image/jpeg")
      return error(415, "unsupported_media_type",
                   "an avatar sent with the session cookie has Content-Type image/png or image/jpeg");
  } else if (type != "application/json") {
    return error(415, "unsupported_media_type",
                 "a call with the session cookie has Content-Type application/json");
  }
  return std::nullopt;
}

std::string hex(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// The tag of the login page's confirmation form: binds the form to the
// browser's session, the space and the address shown, so that only the page
// the relay showed to this session can confirm (with the Origin check, a
// second guard against a forged form).
std::string confirm_tag(const std::string& session, const std::string& space_id, const std::string& url) {
  return hex(sha256("hutopia confirm\n" + session + "\n" + space_id + "\n" + url));
}

net::HttpResponse with_retry_after(net::HttpResponse r, int64_t wait_ms) {
  if (wait_ms > 0) r.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds(wait_ms)));
  return r;
}

net::HttpResponse html_response(int status, std::string body) {
  net::HttpResponse r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::move(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  // Not no-referrer: under it browsers send "Origin: null" with the page's own
  // form POST, which the login CSRF check must refuse.
  r.headers.emplace_back("Referrer-Policy", "same-origin");
  return r;
}

const char kPageHead[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<meta name=\"color-scheme\" content=\"light dark\"><title>Sign in - Hutopia</title>"
    "<style>body{font:16px/1.4 system-ui,sans-serif;background:#f4f4f7;color:#222;margin:0}"
    "main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.12)}h1{font-size:1.3rem;margin-top:0}"
    "label{display:block;margin:.8rem 0 .2rem}input{width:100%;box-sizing:border-box;padding:.5rem;"
    "font:inherit}.row{display:flex;gap:.5rem;margin-top:1.2rem}button{flex:1;padding:.6rem;font:inherit;"
    "cursor:pointer}.err{color:#a00;background:#fee;padding:.5rem;border-radius:4px}small{color:#666}"
    ".url{font-family:ui-monospace,monospace;word-break:break-all}"
    "@media (prefers-color-scheme:dark){body{background:#15151a;color:#eee}main{background:#24242b}"
    ".err{color:#fbb;background:#4a1d1d}small{color:#aaa}}"
    "@media (max-width:26rem){main{margin:0;border-radius:0}}</style>"
    "</head><body><main>";

// Where the token of a login page will go: the space's registered address.
std::string space_lines(const std::string& url) {
  return "<p>You will be sent to <span class=\"url\">" + html_escape(url) + "</span></p>";
}

std::string hidden(const char* name, const std::string& value) {
  return std::string("<input type=\"hidden\" name=\"") + name + "\" value=\"" + html_escape(value) + "\">";
}

net::HttpResponse login_page(int status, const std::string& space_id, const std::string& space_name,
                             const std::string& space_url, const std::string& ret,
                             const std::string& message) {
  std::string b = kPageHead;
  b += "<h1>Sign in to enter <em>" + html_escape(space_name) + "</em></h1>";
  b += space_lines(space_url);
  if (!message.empty()) b += "<p class=\"err\" role=\"alert\">" + html_escape(message) + "</p>";
  b +=
      "<form method=\"post\" action=\"/login\">" + hidden("space", space_id) + hidden("return", ret) +
      hidden("url", space_url) +
      "<label for=\"u\">Username</label><input id=\"u\" name=\"username\" autocomplete=\"username\" required "
      "minlength=\"3\" maxlength=\"32\">"
      "<label for=\"p\">Password</label><input id=\"p\" name=\"password\" type=\"password\" "
      "autocomplete=\"current-password\" required minlength=\"8\" maxlength=\"1024\">"
      "<label for=\"n\">Display name <small>(new accounts only, optional)</small></label>"
      "<input id=\"n\" name=\"name\" maxlength=\"64\">"
      "<div class=\"row\"><button name=\"action\" value=\"login\">Log in</button>"
      "<button name=\"action\" value=\"register\">Create account</button></div></form>"
      "<p><small>Usernames: 3 to 32 characters of a-z 0-9 _ . - starting with a letter. "
      "Passwords: 8 to 1024 characters.</small></p></main></body></html>";
  return html_response(status, std::move(b));
}

// Asks a signed-in user to confirm the space's address before a token goes
// there: the first time they enter the space, and again whenever the space's
// registered address changed since they last confirmed it.
net::HttpResponse confirm_page(int status, const std::string& space_id, const std::string& space_name,
                               const std::string& space_url, const std::string& previous_url,
                               const std::string& ret, const std::string& user_name, const std::string& tag) {
  std::string b = kPageHead;
  b += "<h1>Enter <em>" + html_escape(space_name) + "</em>?</h1>";
  if (!previous_url.empty())
    b +=
        "<p class=\"err\" role=\"alert\">The address of this space changed since you last entered it. It was "
        "<span class=\"url\">" +
        html_escape(previous_url) + "</span>. Continue only if you expected the space to move.</p>";
  b += space_lines(space_url);
  b += "<p>You are signed in as <strong>" + html_escape(user_name) +
       "</strong>. Continuing gives that address a sign-in for this space.</p>"
       "<form method=\"post\" action=\"/login\">" +
       hidden("space", space_id) + hidden("return", ret) + hidden("url", space_url) + hidden("tag", tag) +
       "<div class=\"row\"><button name=\"action\" value=\"confirm\">Continue</button></div></form>"
       "<p><small>If you did not expect this, close this page.</small></p></main></body></html>";
  return html_response(status, std::move(b));
}

net::HttpResponse login_error_page(int status, const std::string& message, int64_t retry_ms = 0) {
  std::string b = kPageHead;
  b += "<h1>Cannot sign in</h1><p class=\"err\">" + html_escape(message) + "</p></main></body></html>";
  return with_retry_after(html_response(status, std::move(b)), retry_ms);
}

}  // namespace

// ---------------------------------------------------------------- keys

Status RelayKeys::ensure() {
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return Status::io_error("cannot create " + dir_);
  bool ok = false;
  std::string cur = trim(read_file(dir_ + "/current", &ok));
  if (ok && !cur.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    return reload_locked();
  }
  Result<std::string> kid = rotate(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  return kid.ok() ? Status() : kid.status();
}

Result<std::string> RelayKeys::rotate(int64_t now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) return Status::io_error("cannot create " + dir_);
  bool ok = false;
  std::string old = trim(read_file(dir_ + "/current", &ok));
  std::string kid = random_token(12);
  Result<Key> key = Key::generate_ed25519(kid);
  if (!key.ok()) return key.status();
  HUT_RETURN_IF_ERROR(key->save_pem_file(dir_ + "/" + kid + ".pem"));
  if (ok && !old.empty())
    HUT_RETURN_IF_ERROR(write_file_atomic(dir_ + "/" + old + ".retired", std::to_string(now_s) + "\n"));
  HUT_RETURN_IF_ERROR(write_file_atomic(dir_ + "/current", kid + "\n"));
  current_.reset();
  current_stamp_.clear();
  return kid;
}

Status RelayKeys::reload_locked() {
  bool ok = false;
  std::string kid = trim(read_file(dir_ + "/current", &ok));
  if (!ok || kid.empty()) return Status::not_found("no current key in " + dir_);
  if (current_ && current_stamp_ == kid) return Status();
  Result<Key> key = Key::load_pem_file(dir_ + "/" + kid + ".pem", kid);
  if (!key.ok()) return key.status();
  current_ = *key;
  current_stamp_ = kid;
  return Status();
}

Result<Key> RelayKeys::signing_key() {
  std::lock_guard<std::mutex> lock(mu_);
  HUT_RETURN_IF_ERROR(reload_locked());
  return *current_;
}

Result<std::string> RelayKeys::jwks(int64_t now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  HUT_RETURN_IF_ERROR(reload_locked());
  KeySet set;
  set.add(*current_);
  uv_fs_t req;
  int n = uv_fs_scandir(nullptr, &req, dir_.c_str(), 0, nullptr);
  uv_dirent_t ent;
  for (int i = 0; n > 0 && uv_fs_scandir_next(&req, &ent) != UV_EOF; ++i) {
    std::string name = ent.name;
    const std::string suffix = ".retired";
    if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string kid = name.substr(0, name.size() - suffix.size());
    bool ok = false;
    std::string when = trim(read_file(dir_ + "/" + name, &ok));
    int64_t retired = ok ? std::strtoll(when.c_str(), nullptr, 10) : 0;
    // Tokens signed up to `retired` live token_ttl; spaces allow the leeway.
    if (retired + token_ttl_s_ + kLeewayS < now_s) continue;
    Result<Key> key = Key::load_pem_file(dir_ + "/" + kid + ".pem", kid);
    if (key.ok()) set.add(*key);
  }
  uv_fs_req_cleanup(&req);
  return set.to_jwks();
}

// ---------------------------------------------------------------- store

RelayStore::~RelayStore() {
  if (db_) sqlite3_close_v2(db_);
}

Status RelayStore::open(const std::string& path) {
  int rc = sqlite3_open_v2(path.c_str(), &db_,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) return Status::io_error("cannot open " + path + ": " + sqlite3_errstr(rc));
  chmod(path.c_str(), 0600);
  sqlite3_busy_timeout(db_, 5000);
  const char* setup = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;";
  char* err = nullptr;
  if (sqlite3_exec(db_, setup, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string m = err ? err : "?";
    sqlite3_free(err);
    return Status::io_error(path + ": " + m);
  }
  // Migrations, in order; PRAGMA user_version counts those applied.
  static const char* const kMigrations[] = {
      "CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
      " password_hash TEXT NOT NULL, avatar_type TEXT, avatar BLOB, created_ms INTEGER NOT NULL);"
      "CREATE TABLE sessions (hash BLOB PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id) ON DELETE "
      "CASCADE,"
      " expires_ms INTEGER NOT NULL);"
      "CREATE INDEX sessions_expiry ON sessions(expires_ms);"
      "CREATE TABLE spaces (id TEXT PRIMARY KEY, name TEXT NOT NULL, url TEXT NOT NULL,"
      " owner_id TEXT NOT NULL REFERENCES users(id), created_ms INTEGER NOT NULL);",
      // The space address each user last confirmed on the login page.
      "CREATE TABLE confirmations (user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
      " space_id TEXT NOT NULL REFERENCES spaces(id) ON DELETE CASCADE, url TEXT NOT NULL,"
      " confirmed_ms INTEGER NOT NULL, PRIMARY KEY (user_id, space_id));"
      "CREATE INDEX spaces_owner ON spaces(owner_id);",
  };
  Stmt v(db_, "PRAGMA user_version");
  int version = (v.ok() && v.step() == SQLITE_ROW) ? static_cast<int>(v.col_int(0)) : 0;
  for (int i = version; i < static_cast<int>(std::size(kMigrations)); ++i) {
    std::string sql =
        std::string("BEGIN;") + kMigrations[i] + "PRAGMA user_version=" + std::to_string(i + 1) + ";COMMIT;";
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string m = err ? err : "?";
      sqlite3_free(err);
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return Status::io_error(path + ": migration " + std::to_string(i + 1) + ": " + m);
    }
  }
  return Status();
}

// ---------------------------------------------------------------- relay

struct Relay::Job {
  uv_work_t work;
  Relay* relay;
  std::shared_ptr<net::HttpExchange> exchange;
  Request request;
  net::HttpResponse response;
  bool hashes = false;  // runs in the password-hash lane
  uint64_t start_ns = 0;
};

Relay::Relay(RelayConfig config, uv_loop_t* loop) : config_(std::move(config)), loop_(loop) {}

Relay::~Relay() = default;

Result<std::unique_ptr<Relay>> Relay::create(RelayConfig config, uv_loop_t* loop) {
  std::unique_ptr<Relay> r(new Relay(std::move(config), loop));
  const std::string& dir = r->config_.relay.data_dir;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::io_error("cannot create relay.data_dir " + dir + ": " + std::strerror(errno));
  HUT_RETURN_IF_ERROR(r->store_.open(dir + "/relay.db"));
  r->keys_ = std::make_unique<RelayKeys>(dir + "/keys", r->config_.relay.token_ttl);
  HUT_RETURN_IF_ERROR(r->keys_->ensure());
  const RelayConfig::Limits& l = r->config_.limits;
  r->login_account_limit_ =
      std::make_unique<RateLimiter>(l.login_attempts_per_account, l.login_window * 1000);
  r->login_address_limit_ =
      std::make_unique<RateLimiter>(l.login_attempts_per_address, l.login_window * 1000);
  r->account_limit_ = std::make_unique<RateLimiter>(l.accounts_per_address, l.account_window * 1000);
  r->token_limit_ = std::make_unique<RateLimiter>(l.tokens_per_user, l.token_window * 1000);
  return r;
}

Status Relay::start() {
  Result<ListenAddress> addr = parse_listen_address(config_.relay.listen);
  if (!addr.ok()) return addr.status();
  Result<ListenAddress> admin = parse_listen_address(config_.admin.listen);
  if (!admin.ok()) return Status::invalid_argument("admin.listen: " + std::string(admin.status().message()));
  net::NetOptions o;
  o.public_host = addr->host;
  o.public_port = addr->port;
  o.admin_enabled = true;
  o.admin_host = admin->host;
  o.admin_port = admin->port;
  // An avatar may have 1 MiB; a larger body gets 413 from the network layer.
  o.max_body = 1 << 20;
  o.websocket = false;  // HTTP only: every upgrade is refused
  Result<std::unique_ptr<net::NetServer>> net = net::NetServer::create(loop_, o, this);
  if (!net.ok()) return net.status();
  net_ = std::move(*net);
  host_ = addr->host;
  port_ = net_->public_port();
  admin_host_ = admin->host;
  admin_port_ = net_->admin_port();
  return Status();
}

std::string Relay::admin_url() const {
  std::string h = admin_host_.empty() || admin_host_ == "0.0.0.0" ? "127.0.0.1" : admin_host_;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";
  return "http://" + h + ":" + std::to_string(admin_port_);
}

Relay::ReloadReport Relay::reload(const RelayConfig& next) {
  ReloadReport report;
  auto diff = [&](const char* name, const auto& before, const auto& after, bool live) {
    if (before == after) return;
    (live ? report.applied : report.needs_restart).push_back(name);
  };
  const RelayConfig& c = config_;
#define HUT_LIVE(section, key) diff(#section "." #key, c.section.key, next.section.key, true)
#define HUT_RESTART(section, key) diff(#section "." #key, c.section.key, next.section.key, false)
  HUT_RESTART(relay, listen);
  HUT_RESTART(relay, issuer);
  HUT_RESTART(relay, data_dir);
  HUT_RESTART(relay, token_ttl);
  HUT_RESTART(relay, session_ttl);
  HUT_RESTART(relay, registration);
  HUT_RESTART(admin, listen);
  HUT_LIVE(admin, token);
  HUT_LIVE(log, level);
  HUT_LIVE(limits, login_attempts_per_account);
  HUT_LIVE(limits, login_attempts_per_address);
  HUT_LIVE(limits, login_window);
  HUT_LIVE(limits, accounts_per_address);
  HUT_LIVE(limits, account_window);
  HUT_LIVE(limits, tokens_per_user);
  HUT_LIVE(limits, token_window);
  HUT_RESTART(limits, spaces_per_user);
  HUT_LIVE(limits, hash_workers);
  HUT_LIVE(limits, hash_queue);
#undef HUT_LIVE
#undef HUT_RESTART
  // Only what pool threads never read from config_ is written here; the
  // budgets themselves are thread-safe.
  const RelayConfig::Limits& l = next.limits;
  login_account_limit_->set_budget(l.login_attempts_per_account, l.login_window * 1000);
  login_address_limit_->set_budget(l.login_attempts_per_address, l.login_window * 1000);
  account_limit_->set_budget(l.accounts_per_address, l.account_window * 1000);
  token_limit_->set_budget(l.tokens_per_user, l.token_window * 1000);
  config_.limits.login_attempts_per_account = l.login_attempts_per_account;
  config_.limits.login_attempts_per_address = l.login_attempts_per_address;
  config_.limits.login_window = l.login_window;
  config_.limits.accounts_per_address = l.accounts_per_address;
  config_.limits.account_window = l.account_window;
  config_.limits.tokens_per_user = l.tokens_per_user;
  config_.limits.token_window = l.token_window;
  config_.limits.hash_workers = l.hash_workers;
  config_.limits.hash_queue = l.hash_queue;
  config_.admin.token = next.admin.token;
  config_.log = next.log;
  if (!stopping_) start_waiting_hash_jobs();
  return report;
}

void Relay::handle_admin(const std::shared_ptr<net::HttpExchange>& ex) {
  const std::string& path = ex->path;
  if (ex->method != "GET" && ex->method != "HEAD") {
    ex->respond(error(405, "method_not_allowed", "use GET"));
    return;
  }
  if (path == "/healthz") {
    ex->respond(json_response(200, R"({"ok":true})"));
    return;
  }
  if (config_.admin.token.empty()) {
    ex->respond(
        error(401, "unauthenticated", "no admin token is configured ([admin] token); only /healthz answers"));
    return;
  }
  std::string_view auth = ex->header("authorization");
  constexpr std::string_view kBearer = "Bearer ";
  bool ok = auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer &&
            admin::AdminApi::token_equals(auth.substr(kBearer.size()), config_.admin.token);
  if (!ok) {
    ex->respond(error(401, "unauthenticated",
                      auth.empty() ? "missing Authorization: Bearer <admin token>" : "wrong admin token"));
    return;
  }
  if (path == "/metrics") {
    net::HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_text();
    ex->respond(std::move(r));
    return;
  }
  ex->respond(error(404, "not_found", "no such route"));
}

std::string Relay::metrics_text() const {
  std::string out;
  const net::NetCounters& nc = net_->counters();
  out +=
      "# HELP hutopia_relay_logins_total Password logins (API and login page), by result.\n"
      "# TYPE hutopia_relay_logins_total counter\n"
      "hutopia_relay_logins_total{result=\"ok\"} " +
      std::to_string(stats_.logins_ok.load()) +
      "\n"
      "hutopia_relay_logins_total{result=\"failed\"} " +
      std::to_string(stats_.logins_failed.load()) + "\n";
  metric_line(&out, "hutopia_relay_signups_total", "counter", "Accounts created.", stats_.signups.load());
  metric_line(&out, "hutopia_relay_tokens_minted_total", "counter", "Relay tokens signed for spaces.",
              stats_.tokens_minted.load());
  metric_line(&out, "hutopia_relay_throttled_total", "counter",
              "Requests answered 429 by a budget of [limits].", stats_.throttled.load());
  metric_line(&out, "hutopia_relay_hash_refused_total", "counter",
              "Logins and sign-ups answered 503: the password-hash queue was full.",
              stats_.hash_refused.load());
  metric_line(&out, "hutopia_relay_hash_running", "gauge", "Password hashes (argon2id) running now.",
              hash_running_);
  metric_line(&out, "hutopia_relay_hash_queued", "gauge", "Logins and sign-ups waiting for a hash worker.",
              hash_waiting_.size());
  metric_line(&out, "hutopia_relay_jobs", "gauge", "Requests waiting for or running on the thread pool.",
              pending_);
  stats_.hash_seconds.render(&out, "hutopia_relay_hash_request_duration_seconds",
                             "Time of a login or sign-up from its arrival to its answer, queue included.");
  metric_line(&out, "hutopia_http_requests_total", "counter", "HTTP requests on both listeners.",
              nc.http_requests);
  out +=
      "# HELP hutopia_http_responses_total HTTP responses on both listeners, by status class.\n"
      "# TYPE hutopia_http_responses_total counter\n";
  for (int i = 0; i < 5; ++i) {
    out += "hutopia_http_responses_total{code=\"" + std::to_string(i + 1) + "xx\"} " +
           std::to_string(nc.http_responses[i]) + "\n";
  }
  metric_line(&out, "hutopia_http_sockets", "gauge", "Open connections to the public listener.",
              net_->socket_count());
  return out;
}

std::string Relay::public_url() const {
  if (host_.find(':') != std::string::npos) return "http://[" + host_ + "]:" + std::to_string(port_);
  return "http://" + host_ + ":" + std::to_string(port_);
}

void Relay::stop(std::function<void()> done) {
  if (stopping_) return;
  stopping_ = true;
  stop_done_ = std::move(done);
  while (!hash_waiting_.empty()) {
    std::unique_ptr<Job> job(hash_waiting_.front());
    hash_waiting_.pop_front();
    --pending_;
    job->exchange->respond(error(503, "unavailable", "the relay is shutting down"));
  }
  if (!net_) {
    net_down_ = true;
    maybe_finish_stop();
    return;
  }
  net_->shutdown(2000, [this] {
    net_down_ = true;
    maybe_finish_stop();
  });
}

void Relay::maybe_finish_stop() {
  if (!stopping_ || !net_down_ || pending_ > 0) return;
  net_.reset();
  if (stop_done_) {
    auto d = std::move(stop_done_);
    d();
  }
}

void Relay::on_http(std::shared_ptr<net::HttpExchange> exchange) {
  LogRequestScope scope(exchange->request_id);
  if (stopping_) {
    exchange->respond(error(503, "unavailable", "the relay is shutting down"));
    return;
  }
  if (exchange->listener == net::Listener::kAdmin) {
    handle_admin(exchange);
    return;
  }
  auto* job = new Job();
  job->start_ns = uv_hrtime();
  job->relay = this;
  job->exchange = exchange;
  job->request.method = exchange->method;
  job->request.path = exchange->path;
  job->request.query = exchange->query;
  job->request.body = exchange->body;
  job->request.authorization = std::string(exchange->header("authorization"));
  job->request.cookie = std::string(exchange->header("cookie"));
  job->request.content_type = std::string(exchange->header("content-type"));
  job->request.origin = std::string(exchange->header("origin"));
  job->request.peer = exchange->peer;
  job->work.data = job;
  const std::string& m = job->request.method;
  const std::string& p = job->request.path;
  job->hashes = m == "POST" && (p == "/api/v1/sessions" || p == "/api/v1/accounts" || p == "/login");
  if (job->hashes && hash_running_ >= static_cast<size_t>(config_.limits.hash_workers)) {
    if (hash_waiting_.size() >= static_cast<size_t>(config_.limits.hash_queue)) {
      delete job;
      stats_.hash_refused++;
      net::HttpResponse r = error(503, "busy", "the relay is busy checking passwords; try again shortly");
      r.headers.emplace_back("Retry-After", "1");
      exchange->respond(std::move(r));
      return;
    }
    ++pending_;
    hash_waiting_.push_back(job);
    return;
  }
  ++pending_;
  if (job->hashes) ++hash_running_;
  if (!submit(job)) {
    --pending_;
    if (job->hashes) --hash_running_;
    delete job;
    exchange->respond(internal_error("cannot queue work"));
  }
}

bool Relay::submit(Job* job) { return uv_queue_work(loop_, &job->work, run_job, after_job) == 0; }

void Relay::start_waiting_hash_jobs() {
  while (!hash_waiting_.empty() && hash_running_ < static_cast<size_t>(config_.limits.hash_workers)) {
    std::unique_ptr<Job> job(hash_waiting_.front());
    hash_waiting_.pop_front();
    if (!job->exchange->connected()) {  // the client left: no hash for nobody
      --pending_;
      continue;
    }
    ++hash_running_;
    if (!submit(job.get())) {
      --hash_running_;
      --pending_;
      LogRequestScope scope(job->exchange->request_id);
      job->exchange->respond(internal_error("cannot queue work"));
      continue;
    }
    job.release();
  }
}

void Relay::run_job(uv_work_t* work) {
  auto* job = static_cast<Job*>(work->data);
  LogRequestScope scope(job->exchange->request_id);
  job->response = job->relay->handle(job->request);
}

void Relay::after_job(uv_work_t* work, int) {
  std::unique_ptr<Job> job(static_cast<Job*>(work->data));
  Relay* relay = job->relay;
  --relay->pending_;
  if (job->hashes) {
    --relay->hash_running_;
    relay->stats_.hash_seconds.observe_ns(uv_hrtime() - job->start_ns);
    if (!relay->stopping_) relay->start_waiting_hash_jobs();
  }
  if (job->response.status == 429) relay->stats_.throttled++;
  if (relay->net_) job->exchange->respond(std::move(job->response));
  job->exchange.reset();
  relay->maybe_finish_stop();
}

// Everything below runs on a pool thread.
net::HttpResponse Relay::handle(const Request& req) {
  const std::string& issuer = config_.relay.issuer;
  sqlite3* db = store_.db();
  const int64_t now = now_ms();

  auto authenticate = [&](User* user, std::string* hash_out) -> bool {
    std::string tok = session_token(req);
    if (tok.empty() || tok.size() > 256) return false;
    std::string hash = sha256(tok);
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt st(db, "SELECT user_id FROM sessions WHERE hash = ? AND expires_ms > ?");
    if (!st.ok()) return false;
    st.blob(1, hash);
    st.int64(2, now);
    if (st.step() != SQLITE_ROW) return false;
    std::string uid = st.col_text(0);
    if (hash_out) *hash_out = hash;
    return load_user(db, "id = ?", uid, user);
  };
  auto unauthenticated = [] {
    net::HttpResponse r =
        error(401, "unauthenticated", "a valid session is required (Authorization: Bearer)");
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  };

  const std::string& m = req.method;
  const std::string& p = req.path;
  // Only the routes of the table (relay_routes.cc) are served.
  std::string allowed;
  switch (net::match_route(relay_routes(), m, p, &allowed)) {
    case net::RouteMatch::kNone:
      return error(404, "not_found", "no such route");
    case net::RouteMatch::kWrongMethod:
      return error(405, "method_not_allowed", "use " + allowed);
    case net::RouteMatch::kFound:
      break;
  }
  if (p == "/api/v1/openapi.json") {
    net::HttpResponse r;
    r.body = std::string(relay_openapi_document());
    r.headers.emplace_back("Cache-Control", "no-cache");
    r.headers.emplace_back("Access-Control-Allow-Origin", "*");
    return r;
  }
  if (std::optional<net::HttpResponse> page = web_page(m, p)) return std::move(*page);

  if (p == "/.well-known/jwks.json") {
    if (m != "GET" && m != "HEAD") return error(405, "method_not_allowed", "use GET");
    Result<std::string> jwks = keys_->jwks(now / 1000);
    if (!jwks.ok()) return internal_error(std::string(jwks.status().message()).c_str());
    net::HttpResponse r;
    r.body = *jwks;
    r.headers.emplace_back("Cache-Control", "max-age=60");
    return r;
  }

  // The outcome of a step shared by the JSON API and the login page.
  struct Outcome {
    int status = 0;  // 0: done
    std::string code;
    std::string message;
    int64_t retry_ms = 0;  // for 429: when to try again
  };
  auto fail = [](int status, const char* code, std::string message) {
    return Outcome{status, code, std::move(message)};
  };
  auto too_many = [](const char* code, const std::string& what, int64_t wait_ms) {
    return Outcome{429, code,
                   what + "; try again in " + std::to_string(retry_after_seconds(wait_ms)) + " seconds",
                   wait_ms};
  };
  auto as_error = [](const Outcome& o) {
    return with_retry_after(error(o.status, o.code.c_str(), o.message), o.retry_ms);
  };

  // State-changing API calls that another site could forge are refused
  // before anything else happens.
  if (p.rfind("/api/v1/", 0) == 0 && m != "GET" && m != "HEAD") {
    std::optional<net::HttpResponse> refusal = forgery_refusal(req, issuer);
    if (refusal) return std::move(*refusal);
  }

  auto create_account = [&](const char* username, const char* password, const char* name,
                            User* out) -> Outcome {
    if (!config_.relay.registration)
      return fail(403, "registration_closed", "this relay does not take new accounts");
    if (!username) return fail(400, "bad_username", "username is a string");
    if (!password) return fail(400, "bad_password", "password is a string");
    std::string broken = username_rule_broken(username);
    if (!broken.empty()) return fail(400, "bad_username", broken);
    broken = password_rule_broken(password);
    if (!broken.empty()) return fail(400, "bad_password", broken);
    std::string display = (name && *name) ? name : username;
    broken = name_rule_broken(display);
    if (!broken.empty()) return fail(400, "bad_name", broken);
    {
      std::lock_guard<std::mutex> lock(store_.mutex());
      User existing;
      if (load_user(db, "username = ?", username, &existing))
        return fail(409, "username_taken", "that username is taken");
    }
    if (int64_t wait = account_limit_->take(req.peer, now))
      return too_many("too_many_accounts", "too many new accounts from this address", wait);
    unsigned char salt[kArgonSalt];
    if (RAND_bytes(salt, sizeof(salt)) != 1) return fail(500, "internal", "no random bytes");
    char encoded[256];
    std::string pw = password;
    int rc = argon2id_hash_encoded(kArgonTime, kArgonMemoryKiB, kArgonLanes, pw.data(), pw.size(), salt,
                                   sizeof(salt), kArgonHash, encoded, sizeof(encoded));
    if (rc != ARGON2_OK) return fail(500, "internal", argon2_error_message(rc));
    User u;
    u.id = "u_" + random_hex(12);
    u.username = username;
    u.name = display;
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt st(db, "INSERT INTO users (id, username, name, password_hash, created_ms) VALUES (?, ?, ?, ?, ?)");
    if (!st.ok()) return fail(500, "internal", "the store failed");
    st.text(1, u.id);
    st.text(2, u.username);
    st.text(3, u.name);
    st.text(4, encoded);
    st.int64(5, now);
    rc = st.step();
    if (rc == SQLITE_CONSTRAINT) return fail(409, "username_taken", "that username is taken");
    if (rc != SQLITE_DONE) return fail(500, "internal", "the store failed");
    stats_.signups++;
    *out = u;
    return {};
  };

  auto check_password = [&](const char* username, const char* password, User* out) -> Outcome {
    if (!username || !password) return fail(400, "bad_request", "username and password are strings");
    // Budgets first, before any hash: per address, then per account (the
    // name as typed, known or not, so the answer tells nothing).
    const std::string account = std::string(username).substr(0, 64);
    int64_t wait = login_address_limit_->take(req.peer, now);
    if (wait == 0) wait = login_account_limit_->take(account, now);
    if (wait > 0)
      return too_many("too_many_attempts", "too many logins for this account or from this address", wait);
    std::string stored;
    User u;
    bool found = false;
    {
      std::lock_guard<std::mutex> lock(store_.mutex());
      Stmt st(
          db,
          "SELECT id, username, name, avatar_type IS NOT NULL, password_hash FROM users WHERE username = ?");
      if (!st.ok()) return fail(500, "internal", "the store failed");
      st.text(1, username);
      if (st.step() == SQLITE_ROW) {
        found = true;
        u.id = st.col_text(0);
        u.username = st.col_text(1);
        u.name = st.col_text(2);
        u.has_avatar = st.col_int(3) != 0;
        stored = st.col_text(4);
      }
    }
    // An unknown username costs the same argon2id verification as a known one,
    // so the answer's timing does not tell whether the account exists.
    std::string pw = password;
    const std::string& hash = found ? stored : unknown_user_hash();
    bool verified = pw.size() <= 4096 && argon2id_verify(hash.c_str(), pw.data(), pw.size()) == ARGON2_OK;
    bool good = found && verified;
    if (!good) {
      stats_.logins_failed++;
      return fail(401, "bad_credentials", "wrong username or password");
    }
    stats_.logins_ok++;
    login_account_limit_->clear(account);
    *out = u;
    return {};
  };

  auto new_session = [&](const User& u, std::string* token, int64_t* expires) -> Outcome {
    *token = random_token(32);
    *expires = now + config_.relay.session_ttl * 1000;
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt del(db, "DELETE FROM sessions WHERE expires_ms <= ?");
    del.int64(1, now);
    del.step();
    Stmt st(db, "INSERT INTO sessions (hash, user_id, expires_ms) VALUES (?, ?, ?)");
    if (!st.ok()) return fail(500, "internal", "the store failed");
    st.blob(1, sha256(*token));
    st.text(2, u.id);
    st.int64(3, *expires);
    if (st.step() != SQLITE_DONE) return fail(500, "internal", "the store failed");
    return {};
  };
  // Secure when browsers reach the relay over https, so that the cookie
  // never travels in the clear.
  const std::string cookie_flags =
      std::string("; Path=/; HttpOnly; SameSite=Lax") + (issuer.rfind("https://", 0) == 0 ? "; Secure" : "");
  auto session_cookie = [&](const std::string& token) {
    return std::string(kCookie) + "=" + token + cookie_flags +
           "; Max-Age=" + std::to_string(config_.relay.session_ttl);
  };

  // A space's entry in the directory.
  struct Space {
    std::string id, name, url, owner;
  };
  auto load_space = [&](const std::string& space_id, Space* out) -> bool {
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt st(db, "SELECT id, name, url, owner_id FROM spaces WHERE id = ?");
    st.text(1, space_id);
    if (st.step() != SQLITE_ROW) return false;
    *out = Space{st.col_text(0), st.col_text(1), st.col_text(2), st.col_text(3)};
    return true;
  };
  auto space_json = [](const Space& sp) {
    JsonPtr o(cJSON_CreateObject());
    cJSON_AddStringToObject(o.get(), "id", sp.id.c_str());
    cJSON_AddStringToObject(o.get(), "name", sp.name.c_str());
    cJSON_AddStringToObject(o.get(), "url", sp.url.c_str());
    cJSON_AddStringToObject(o.get(), "owner", sp.owner.c_str());
    return token_json::print(o.get());
  };
  // The registered URL of a space ("" when none).
  auto space_url = [&](const std::string& space_id) -> std::string {
    Space sp;
    return load_space(space_id, &sp) ? sp.url : std::string();
  };

  auto mint = [&](const User& u, const std::string& space_id, std::string* token,
                  int64_t* expires_ms) -> Outcome {
    if (space_url(space_id).empty()) return fail(404, "not_found", "no space with that id is registered");
    if (int64_t wait = token_limit_->take(u.id, now))
      return too_many("too_many_tokens", "too many relay tokens for this user", wait);
    Result<Key> key = keys_->signing_key();
    if (!key.ok()) return fail(500, "internal", std::string(key.status().message()));
    Claims c;
    c.iss = issuer;
    c.sub = u.id;
    c.aud = space_id;
    c.iat = now / 1000;
    c.exp = c.iat + config_.relay.token_ttl;
    c.jti = random_token(16);
    c.name = u.name;
    c.username = u.username;
    c.avatar = avatar_url(issuer, u);
    Result<std::string> signed_token = sign_token(*key, c);
    if (!signed_token.ok()) return fail(500, "internal", std::string(signed_token.status().message()));
    stats_.tokens_minted++;
    *token = *signed_token;
    *expires_ms = c.exp * 1000;
    return {};
  };

  if (p == "/api/v1/accounts") {
    if (m != "POST") return error(405, "method_not_allowed", "use POST");
    if (!config_.relay.registration)
      return error(403, "registration_closed", "this relay does not take new accounts");
    AccountBody body;
    BodyError bad;
    if (!parse_account_body(req.body, &body, &bad)) return error(400, bad.code.c_str(), bad.message);
    User u;
    Outcome o = create_account(body.username.c_str(), body.password.c_str(),
                               body.name ? body.name->c_str() : nullptr, &u);
    if (o.status) return as_error(o);
    JsonPtr out(cJSON_CreateObject());
    add_user_fields(cJSON_AddObjectToObject(out.get(), "user"), u, issuer, true);
    return json_response(201, token_json::print(out.get()));
  }

  if (p == "/api/v1/sessions") {
    if (m == "DELETE") {
      User u;
      std::string hash;
      if (!authenticate(&u, &hash)) return unauthenticated();
      std::lock_guard<std::mutex> lock(store_.mutex());
      Stmt st(db, "DELETE FROM sessions WHERE hash = ?");
      st.blob(1, hash);
      if (st.step() != SQLITE_DONE) return internal_error(sqlite3_errmsg(db));
      net::HttpResponse r;
      r.status = 204;
      r.content_type = "";
      r.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + cookie_flags + "; Max-Age=0");
      return r;
    }
    if (m != "POST") return error(405, "method_not_allowed", "use POST or DELETE");
    CredentialsBody body;
    BodyError bad;
    if (!parse_credentials_body(req.body, &body, &bad)) return error(400, bad.code.c_str(), bad.message);
    User u;
    Outcome o = check_password(body.username.c_str(), body.password.c_str(), &u);
    if (o.status) return as_error(o);
    std::string tok;
    int64_t expires = 0;
    o = new_session(u, &tok, &expires);
    if (o.status) return as_error(o);
    JsonPtr out(cJSON_CreateObject());
    cJSON_AddStringToObject(out.get(), "session", tok.c_str());
    cJSON_AddNumberToObject(out.get(), "expires_at", static_cast<double>(expires));
    add_user_fields(cJSON_AddObjectToObject(out.get(), "user"), u, issuer, true);
    net::HttpResponse r = json_response(201, token_json::print(out.get()));
    r.headers.emplace_back("Set-Cookie", session_cookie(tok));
    return r;
  }

  if (p == "/login") {
    // A GET's query (already percent-decoded by lws) or a POST's form body.
    LoginFields fields = parse_login_fields(
        m == "POST" ? std::string_view(req.body) : std::string_view(req.query), m == "POST");
    const std::string &space_id = fields.space, &ret = fields.ret, &username = fields.username,
                      &password = fields.password, &name = fields.name, &action = fields.action,
                      &form_url = fields.url, &tag = fields.tag;
    const bool have_space = fields.have_space, have_return = fields.have_return;
    const bool dup = fields.duplicate, bad_encoding = fields.bad_encoding;
    if (dup || bad_encoding || !have_space || !have_return)
      return login_error_page(400,
                              "This sign-in link is malformed: it needs one space and one return address.");
    Space space;
    if (!load_space(space_id, &space))
      return login_error_page(404, "No space with that id is registered on this relay.");
    const std::string& registered = space.url;
    if (!url_is_under(ret, registered))
      return login_error_page(400,
                              "The return address is not part of the space's registered address; "
                              "this relay sends tokens only to the space itself.");
    auto redirect_with_token = [&](const User& u, const std::string& session) -> net::HttpResponse {
      std::string token;
      int64_t expires = 0;
      Outcome o = mint(u, space_id, &token, &expires);
      if (o.status) return login_error_page(o.status, o.message, o.retry_ms);
      net::HttpResponse r;
      r.status = 302;
      r.content_type = "text/plain";
      r.headers.emplace_back("Location", ret + "#token=" + token);
      r.headers.emplace_back("Cache-Control", "no-store");
      r.headers.emplace_back("Referrer-Policy", "no-referrer");
      if (!session.empty()) r.headers.emplace_back("Set-Cookie", session_cookie(session));
      return r;
    };
    // The address this user last confirmed for this space ("" when never).
    auto confirmed_url = [&](const User& u) -> std::string {
      std::lock_guard<std::mutex> lock(store_.mutex());
      Stmt st(db, "SELECT url FROM confirmations WHERE user_id = ? AND space_id = ?");
      st.text(1, u.id);
      st.text(2, space_id);
      return st.step() == SQLITE_ROW ? st.col_text(0) : std::string();
    };
    auto remember_confirmation = [&](const User& u) -> bool {
      std::lock_guard<std::mutex> lock(store_.mutex());
      Stmt st(db,
              "INSERT INTO confirmations (user_id, space_id, url, confirmed_ms) VALUES (?, ?, ?, ?)"
              " ON CONFLICT(user_id, space_id) DO UPDATE SET url = excluded.url,"
              " confirmed_ms = excluded.confirmed_ms");
      st.text(1, u.id);
      st.text(2, space_id);
      st.text(3, registered);
      st.int64(4, now);
      return st.step() == SQLITE_DONE;
    };
    auto ask_to_confirm = [&](int status, const User& u) {
      return confirm_page(status, space_id, space.name, registered, confirmed_url(u), ret, u.name,
                          confirm_tag(session_token(req), space_id, registered));
    };
    auto page = [&](int status, const std::string& message) {
      return login_page(status, space_id, space.name, registered, ret, message);
    };
    if (m == "GET" || m == "HEAD") {
      User u;
      if (!authenticate(&u, nullptr)) return page(200, "");
      // A token goes by redirect only to the address the user confirmed
      // for this space on a page of the relay.
      if (confirmed_url(u) == registered) return redirect_with_token(u, "");
      return ask_to_confirm(200, u);
    }
    if (m != "POST") return error(405, "method_not_allowed", "use GET or POST");
    // A form posted from another site is refused (login CSRF): browsers
    // send Origin with every form POST; the relay's own is its issuer's.
    if (!req.origin.empty() && !same_origin(req.origin, issuer))
      return login_error_page(403, "This form was sent from another site.");
    if (action == "confirm") {
      // Confirming acts with the session cookie: it needs the relay's own
      // Origin (not only "no other") and the tag of the page shown.
      if (req.origin.empty())
        return login_error_page(403, "This confirmation did not come from the relay's own page.");
      User u;
      if (!authenticate(&u, nullptr)) return page(401, "Your session has ended; log in again.");
      if (form_url != registered) return ask_to_confirm(409, u);
      const std::string expected = confirm_tag(session_token(req), space_id, registered);
      if (tag.size() != expected.size() || CRYPTO_memcmp(tag.data(), expected.data(), tag.size()) != 0)
        return login_error_page(403, "This confirmation did not come from the relay's own page.");
      if (!remember_confirmation(u))
        return login_error_page(500, "The relay could not save the confirmation.");
      return redirect_with_token(u, "");
    }
    // The page showed the space's address; logging in confirms that one.
    if (form_url != registered)
      return page(409,
                  "The address of this space changed while this page was open. Check it and log in again.");
    User u;
    Outcome o = action == "register" ? create_account(username.c_str(), password.c_str(), name.c_str(), &u)
                                     : check_password(username.c_str(), password.c_str(), &u);
    if (o.status) return with_retry_after(page(o.status, o.message), o.retry_ms);
    std::string session;
    int64_t expires = 0;
    o = new_session(u, &session, &expires);
    if (o.status) return login_error_page(o.status, o.message);
    if (!remember_confirmation(u)) return login_error_page(500, "The relay could not save the confirmation.");
    return redirect_with_token(u, session);
  }

  if (p == "/api/v1/me") {
    User u;
    if (!authenticate(&u, nullptr)) return unauthenticated();
    if (m == "GET") return json_response(200, user_json(u, issuer));
    if (m != "PATCH") return error(405, "method_not_allowed", "use GET or PATCH");
    ProfileBody body;
    BodyError bad;
    if (!parse_profile_body(req.body, &body, &bad)) return error(400, bad.code.c_str(), bad.message);
    if (body.name) {
      std::lock_guard<std::mutex> lock(store_.mutex());
      Stmt st(db, "UPDATE users SET name = ? WHERE id = ?");
      st.text(1, *body.name);
      st.text(2, u.id);
      if (st.step() != SQLITE_DONE) return internal_error(sqlite3_errmsg(db));
      u.name = *body.name;
    }
    return json_response(200, user_json(u, issuer));
  }

  if (p == "/api/v1/me/avatar") {
    if (m != "PUT") return error(405, "method_not_allowed", "use PUT");
    User u;
    if (!authenticate(&u, nullptr)) return unauthenticated();
    const char* type = is_png(req.body) ? "image/png" : is_jpeg(req.body) ? "image/jpeg" : nullptr;
    if (!type) return error(415, "unsupported_media_type", "an avatar is a PNG or JPEG image");
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt st(db, "UPDATE users SET avatar_type = ?, avatar = ? WHERE id = ?");
    st.text(1, type);
    st.blob(2, req.body);
    st.text(3, u.id);
    if (st.step() != SQLITE_DONE) return internal_error(sqlite3_errmsg(db));
    u.has_avatar = true;
    return json_response(200, user_json(u, issuer));
  }

  if (p.rfind("/avatars/", 0) == 0) {
    if (m != "GET" && m != "HEAD") return error(405, "method_not_allowed", "use GET");
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt st(db, "SELECT avatar_type, avatar FROM users WHERE id = ? AND avatar_type IS NOT NULL");
    st.text(1, p.substr(9));
    if (st.step() != SQLITE_ROW) return error(404, "not_found", "no such avatar");
    net::HttpResponse r;
    r.content_type = st.col_text(0);
    const void* blob = sqlite3_column_blob(st.s, 1);
    r.body.assign(static_cast<const char*>(blob), static_cast<size_t>(sqlite3_column_bytes(st.s, 1)));
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }

  if (p.rfind("/api/v1/users/", 0) == 0) {
    if (m != "GET") return error(405, "method_not_allowed", "use GET");
    std::string id = p.substr(14);
    User u;
    std::lock_guard<std::mutex> lock(store_.mutex());
    if (!load_user(db, "id = ?", id, &u)) return error(404, "not_found", "no such user");
    JsonPtr o(cJSON_CreateObject());
    add_user_fields(o.get(), u, issuer, true);
    return json_response(200, token_json::print(o.get()));
  }

  if (p == "/api/v1/spaces") {
    if (m == "GET") {
      std::lock_guard<std::mutex> lock(store_.mutex());
      Stmt st(db, "SELECT id, name, url, owner_id FROM spaces ORDER BY id");
      if (!st.ok()) return internal_error(sqlite3_errmsg(db));
      JsonPtr arr(cJSON_CreateArray());
      while (st.step() == SQLITE_ROW) {
        cJSON* o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", st.col_text(0).c_str());
        cJSON_AddStringToObject(o, "name", st.col_text(1).c_str());
        cJSON_AddStringToObject(o, "url", st.col_text(2).c_str());
        cJSON_AddStringToObject(o, "owner", st.col_text(3).c_str());
        cJSON_AddItemToArray(arr.get(), o);
      }
      return json_response(200, token_json::print(arr.get()));
    }
    if (m != "POST") return error(405, "method_not_allowed", "use GET or POST");
    User u;
    if (!authenticate(&u, nullptr)) return unauthenticated();
    SpaceBody body;
    BodyError bad;
    if (!parse_space_body(req.body, &body, &bad)) return error(400, bad.code.c_str(), bad.message);
    // The relay assigns the id: 128 random bits, so nobody can claim the
    // id of a space before its admin, or guess one.
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof(raw)) != 1) return internal_error("no random bytes");
    Space space{space_id_from_bytes(std::string_view(reinterpret_cast<char*>(raw), sizeof(raw))), body.name,
                body.url, u.id};
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt count(db, "SELECT count(*) FROM spaces WHERE owner_id = ?");
    count.text(1, u.id);
    if (count.step() != SQLITE_ROW) return internal_error(sqlite3_errmsg(db));
    if (count.col_int(0) >= config_.limits.spaces_per_user)
      return error(403, "too_many_spaces",
                   "this account has registered " + std::to_string(count.col_int(0)) +
                       " spaces, the most this relay allows; change one with PATCH instead");
    Stmt st(db, "INSERT INTO spaces (id, name, url, owner_id, created_ms) VALUES (?, ?, ?, ?, ?)");
    st.text(1, space.id);
    st.text(2, space.name);
    st.text(3, space.url);
    st.text(4, space.owner);
    st.int64(5, now);
    if (st.step() != SQLITE_DONE) return internal_error(sqlite3_errmsg(db));
    return json_response(201, space_json(space));
  }

  // /api/v1/spaces/<id> and /api/v1/spaces/<id>/tokens
  const std::string sp = "/api/v1/spaces/";
  if (p.rfind(sp, 0) == 0) {
    std::string rest = p.substr(sp.size());
    size_t slash = rest.find('/');
    std::string space_id = rest.substr(0, slash);
    std::string sub = slash == std::string::npos ? std::string() : rest.substr(slash);
    if (sub == "/tokens") {
      if (m != "POST") return error(405, "method_not_allowed", "use POST");
      User u;
      if (!authenticate(&u, nullptr)) return unauthenticated();
      std::string token;
      int64_t expires = 0;
      Outcome o = mint(u, space_id, &token, &expires);
      if (o.status) return as_error(o);
      JsonPtr out(cJSON_CreateObject());
      cJSON_AddStringToObject(out.get(), "token", token.c_str());
      cJSON_AddNumberToObject(out.get(), "expires_at", static_cast<double>(expires));
      return json_response(200, token_json::print(out.get()));
    }
    if (!sub.empty()) return error(404, "not_found", "no such route");
    if (m == "GET") {
      Space space;
      if (!load_space(space_id, &space))
        return error(404, "not_found", "no space with that id is registered");
      return json_response(200, space_json(space));
    }
    if (m != "PATCH") return error(405, "method_not_allowed", "use GET or PATCH");
    User u;
    if (!authenticate(&u, nullptr)) return unauthenticated();
    SpacePatchBody body;
    BodyError bad;
    if (!parse_space_patch_body(req.body, &body, &bad)) return error(400, bad.code.c_str(), bad.message);
    Space space;
    if (!load_space(space_id, &space)) return error(404, "not_found", "no space with that id is registered");
    if (space.owner != u.id) return error(403, "forbidden", "only the space's owner may change it");
    if (body.name) space.name = *body.name;
    if (body.url) space.url = *body.url;
    std::lock_guard<std::mutex> lock(store_.mutex());
    Stmt st(db, "UPDATE spaces SET name = ?, url = ? WHERE id = ? AND owner_id = ?");
    st.text(1, space.name);
    st.text(2, space.url);
    st.text(3, space.id);
    st.text(4, u.id);
    if (st.step() != SQLITE_DONE) return internal_error(sqlite3_errmsg(db));
    return json_response(200, space_json(space));
  }

  return error(404, "not_found", "no such route");
}

}  // namespace hut::relay

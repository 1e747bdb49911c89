#include "relay/login_page.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "relay/accounts.h"
#include "relay/answers.h"
#include "relay/directory.h"
#include "relay/handlers.h"
#include "relay/rules.h"
#include "relay/sessions.h"

// Made by scripts/embed_assets.py from login/.
extern "C" {
extern const size_t relay_login_pages_count;
extern const char* const relay_login_pages_paths[];
extern const unsigned char* const relay_login_pages_data[];
extern const size_t relay_login_pages_sizes[];
}

namespace hut::relay {

namespace {

std::string_view template_text(std::string_view name) {
  for (size_t i = 0; i < relay_login_pages_count; ++i) {
    if (name == relay_login_pages_paths[i])
      return std::string_view(reinterpret_cast<const char*>(relay_login_pages_data[i]),
                              relay_login_pages_sizes[i]);
  }
  return {};
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

// The tag of the confirmation form: binds the form to the browser's
// session, the space and the address shown, so that only the page the relay
// showed to this session can confirm (with the Origin check, a second guard
// against a forged form).
std::string confirm_tag(const std::string& session, const std::string& space_id, const std::string& url) {
  std::string text = "hutopia confirm\n" + session + "\n" + space_id + "\n" + url;
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out);
  return hex(std::string_view(reinterpret_cast<char*>(out), sizeof(out)));
}

net::HttpResponse page(int status, std::string content) {
  return html_response(status, render_template("layout.html", {{"content", std::move(content)}}));
}

net::HttpResponse error_page(int status, const std::string& message, int64_t retry_ms = 0) {
  return with_retry_after(page(status, render_template("error.html", {{"message", message}})), retry_ms);
}

// One /login request once its space and return address are known good.
struct Login {
  Call& call;
  SpaceEntry space;
  std::string ret;

  net::HttpResponse form(int status, const std::string& message) const {
    std::string alert =
        message.empty() ? std::string() : render_template("alert.html", {{"message", message}});
    return page(status, render_template("login.html", {{"space_name", space.name},
                                                       {"space_url", space.url},
                                                       {"space_id", space.id},
                                                       {"return", ret},
                                                       {"alert", std::move(alert)}}));
  }

  // The address this user last confirmed for this space ("" when never).
  std::string confirmed_url(const User& u) const {
    RelayDb::Locked l = call.relay.db.lock();
    RelayQuery q(l, "SELECT url FROM confirmations WHERE user_id = ?1 AND space_id = ?2");
    return q.bind(1, u.id).bind(2, space.id).step() ? q.str(0) : std::string();
  }

  bool remember_confirmation(const User& u) const {
    RelayDb::Locked l = call.relay.db.lock();
    return RelayQuery(
               l,
               "INSERT INTO confirmations (user_id, space_id, url, confirmed_ms) VALUES (?1, ?2, ?3, ?4)"
               " ON CONFLICT(user_id, space_id) DO UPDATE SET url = excluded.url,"
               " confirmed_ms = excluded.confirmed_ms")
        .bind(1, u.id)
        .bind(2, space.id)
        .bind(3, space.url)
        .bind(4, call.now_ms)
        .run()
        .ok();
  }

  // Asks a signed-in user to confirm the space's address before a token
  // goes there: the first time they enter the space, and again whenever the
  // address changed since they last confirmed it.
  net::HttpResponse ask_to_confirm(int status, const User& u) const {
    std::string previous = confirmed_url(u);
    std::string moved =
        previous.empty() ? std::string() : render_template("moved.html", {{"previous_url", previous}});
    return page(status, render_template("confirm.html",
                                        {{"space_name", space.name},
                                         {"space_url", space.url},
                                         {"space_id", space.id},
                                         {"return", ret},
                                         {"user_name", u.name},
                                         {"tag", confirm_tag(session_token(call.req), space.id, space.url)},
                                         {"moved", std::move(moved)}}));
  }

  net::HttpResponse redirect_with_token(const User& u, const std::string& session) const {
    std::string token;
    int64_t expires = 0;
    Outcome o = mint_token(call, u, space.id, &token, &expires);
    if (!o.ok()) return error_page(o.status, o.message, o.retry_ms);
    net::HttpResponse r;
    r.status = 302;
    r.content_type = "text/plain";
    r.headers.emplace_back("Location", ret + "#token=" + token);
    r.headers.emplace_back("Cache-Control", "no-store");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
    if (!session.empty()) r.headers.emplace_back("Set-Cookie", session_cookie(call, session));
    return r;
  }
};

// Reads the fields and checks the space and the return address; an error
// page when they do not hold.
std::optional<net::HttpResponse> start_login(Call& call, bool post, LoginFields* fields, Login* login) {
  // A GET's query (already percent-decoded by lws) or a POST's form body.
  *fields =
      parse_login_fields(post ? std::string_view(call.req.body) : std::string_view(call.req.query), post);
  if (fields->duplicate || fields->bad_encoding || !fields->have_space || !fields->have_return)
    return error_page(400, "This sign-in link is malformed: it needs one space and one return address.");
  if (!load_space(call.relay, fields->space, &login->space))
    return error_page(404, "No space with that id is registered on this relay.");
  if (!url_is_under(fields->ret, login->space.url))
    return error_page(400,
                      "The return address is not part of the space's registered address; "
                      "this relay sends tokens only to the space itself.");
  login->ret = fields->ret;
  return std::nullopt;
}

}  // namespace

std::string render_template(std::string_view name,
                            const std::vector<std::pair<std::string_view, std::string>>& values) {
  std::string_view text = template_text(name);
  std::string out;
  out.reserve(text.size());
  while (!text.empty()) {
    size_t open = text.find("{{");
    if (open == std::string_view::npos) break;
    out.append(text.substr(0, open));
    const bool raw = text.substr(open).starts_with("{{{");
    const std::string_view close_mark = raw ? "}}}" : "}}";
    const size_t key_at = open + (raw ? 3 : 2);
    size_t close = text.find(close_mark, key_at);
    if (close == std::string_view::npos) {
      text = text.substr(open);
      break;
    }
    std::string_view key = text.substr(key_at, close - key_at);
    for (const auto& [k, v] : values) {
      if (k != key) continue;
      out += raw ? v : html_escape(v);
      break;
    }
    text.remove_prefix(close + close_mark.size());
  }
  out.append(text);
  return out;
}

net::HttpResponse get_login(Call& call) {
  LoginFields fields;
  Login login{call, {}, {}};
  if (std::optional<net::HttpResponse> refused = start_login(call, false, &fields, &login)) return *refused;
  User u;
  if (!authenticate(call, &u, nullptr)) return login.form(200, "");
  // A token goes by redirect only to the address the user confirmed for
  // this space on a page of the relay.
  if (login.confirmed_url(u) == login.space.url) return login.redirect_with_token(u, "");
  return login.ask_to_confirm(200, u);
}

net::HttpResponse post_login(Call& call) {
  LoginFields fields;
  Login login{call, {}, {}};
  if (std::optional<net::HttpResponse> refused = start_login(call, true, &fields, &login)) return *refused;
  const Request& req = call.req;
  // A form posted from another site is refused (login CSRF): browsers send
  // Origin with every form POST; the relay's own is its issuer's.
  if (!req.origin.empty() && !same_origin(req.origin, call.issuer()))
    return error_page(403, "This form was sent from another site.");
  const std::string& registered = login.space.url;
  if (fields.action == "confirm") {
    // Confirming acts with the session cookie: it needs the relay's own
    // Origin (not only "no other") and the tag of the page shown.
    if (req.origin.empty())
      return error_page(403, "This confirmation did not come from the relay's own page.");
    User u;
    if (!authenticate(call, &u, nullptr)) return login.form(401, "Your session has ended; log in again.");
    if (fields.url != registered) return login.ask_to_confirm(409, u);
    const std::string expected = confirm_tag(session_token(req), login.space.id, registered);
    if (fields.tag.size() != expected.size() ||
        CRYPTO_memcmp(fields.tag.data(), expected.data(), expected.size()) != 0)
      return error_page(403, "This confirmation did not come from the relay's own page.");
    if (!login.remember_confirmation(u)) return error_page(500, "The relay could not save the confirmation.");
    return login.redirect_with_token(u, "");
  }
  // The page showed the space's address; logging in confirms that one.
  if (fields.url != registered)
    return login.form(
        409, "The address of this space changed while this page was open. Check it and log in again.");
  User u;
  Outcome o = fields.action == "register"
                  ? create_account(call, fields.username, fields.password, fields.name, &u)
                  : check_password(call, fields.username, fields.password, &u);
  if (!o.ok()) return with_retry_after(login.form(o.status, o.message), o.retry_ms);
  std::string session;
  int64_t expires = 0;
  o = new_session(call, u, &session, &expires);
  if (!o.ok()) return error_page(o.status, o.message);
  if (!login.remember_confirmation(u)) return error_page(500, "The relay could not save the confirmation.");
  return login.redirect_with_token(u, session);
}

}  // namespace hut::relay

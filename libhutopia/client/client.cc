// hut::Client: creation, the HTTP calls to the space and the relay
// (discovery, relay login and logout, tokens, the directory), and the
// connection's public face. The connection itself is in connection.cc, the
// ops in ops.cc, the wire format in wire.cc.
#include <hutopia/client.h>

#include "client/connection.h"

namespace hut {

using client::http_error;
using client::HttpReply;
using client::Json;
using client::print;
using client::str;
using client::Transport;
using client::trim_slash;

void Client::Impl::http_json(const std::string& method, const std::string& url_text,
                             const std::string& bearer, std::string body,
                             std::function<void(Status, const cJSON*, const HttpReply&)> done) {
  Result<Url> url = Url::parse(url_text);
  if (!url.ok()) {
    done(url.status(), nullptr, HttpReply{});
    return;
  }
  std::vector<std::pair<std::string, std::string>> headers;
  headers.emplace_back("accept", "application/json");
  if (!bearer.empty()) headers.emplace_back("authorization", "Bearer " + bearer);
  if (method != "GET") headers.emplace_back("content-type", "application/json");
  std::weak_ptr<bool> weak = alive;
  transport->http(method, *url, std::move(headers), std::move(body),
                  [weak, done = std::move(done)](Result<HttpReply> r) {
                    auto a = weak.lock();
                    if (!a || !*a) return;
                    if (!r.ok()) {
                      done(r.status(), nullptr, HttpReply{});
                      return;
                    }
                    Json j(cJSON_ParseWithLength(r->body.data(), r->body.size()));
                    done(Status(), j.get(), *r);
                  });
}

std::string Client::Impl::space_http_base() const {
  std::string s = (space.tls() ? "https://" : "http://") + space.host_header() + base_path;
  return s;
}

void Client::Impl::discover(Callback<SpaceInfo> done) {
  http_json("GET", space_http_base() + "/.well-known/hutopia", "", "",
            [done](Status st, const cJSON* j, const HttpReply& r) {
              if (!st.ok()) return done(st);
              if (r.status != 200) return done(http_error(r, "/.well-known/hutopia"));
              if (!cJSON_IsObject(j) || str(j, "id").empty())
                return done(Status::invalid_argument("/.well-known/hutopia: not a space's answer"));
              done(client::space_info_of(j));
            });
}

void Client::Impl::mint_token(Callback<std::string> done) {
  if (options.relay_session.empty()) return done(Status::unauthenticated("no relay session: log in first"));
  if (options.relay_url.empty() || options.space_id.empty()) {
    discover([this, done](Result<SpaceInfo> info) {
      if (!info.ok()) return done(info.status());
      if (options.space_id.empty()) options.space_id = info->id;
      if (options.relay_url.empty()) options.relay_url = info->relay;
      if (options.relay_url.empty()) return done(Status::failed_precondition("the space trusts no relay"));
      mint_token(done);
    });
    return;
  }
  std::string url = trim_slash(options.relay_url) + "/api/v1/spaces/" + options.space_id + "/tokens";
  http_json("POST", url, options.relay_session, "{}", [done](Status st, const cJSON* j, const HttpReply& r) {
    if (!st.ok()) return done(st);
    if (r.status != 200 && r.status != 201) return done(http_error(r, "minting a token"));
    std::string token = str(j, "token");
    if (token.empty()) return done(Status::internal("the relay answered no token"));
    done(token);
  });
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) { impl_->self = this; }

Client::~Client() {
  if (!impl_) return;
  bool own = impl_->own_loop != nullptr;
  std::unique_ptr<uv_loop_t> loop = std::move(impl_->own_loop);
  impl_.reset();
  if (own) {
    // Let the network layer finish on the client's own loop.
    uv_run(loop.get(), UV_RUN_DEFAULT);
    uv_loop_close(loop.get());
  }
}

Result<std::unique_ptr<Client>> Client::create(ClientOptions options, uv_loop_t* loop) {
  auto impl = std::make_unique<Impl>();
  if (loop == nullptr) {
    impl->own_loop = std::make_unique<uv_loop_t>();
    uv_loop_init(impl->own_loop.get());
    loop = impl->own_loop.get();
  }
  impl->loop = loop;
  if (options.space_url.empty()) return Status::invalid_argument("no space URL");
  Result<Url> url = Url::parse(options.space_url);
  if (!url.ok()) return url.status();
  std::string path = url->path;
  size_t q = path.find('?');
  if (q != std::string::npos) path = path.substr(0, q);
  path = trim_slash(path);
  bool ws_scheme = options.space_url.rfind("ws", 0) == 0 || options.space_url.rfind("WS", 0) == 0;
  if (ws_scheme || (path.size() >= 4 && path.compare(path.size() - 4, 4, "/bus") == 0)) {
    impl->bus = *url;
    impl->bus.path = path.empty() ? "/bus" : path;
    impl->bus.query.clear();
    if (path.size() >= 4 && path.compare(path.size() - 4, 4, "/bus") == 0) path.resize(path.size() - 4);
  } else {
    impl->bus = *url;
    impl->bus.path = path + "/bus";
    impl->bus.query.clear();
  }
  impl->space = *url;
  impl->base_path = path;
  impl->first_token = options.token;
  impl->options = std::move(options);
  if (impl->options.backoff_initial_ms <= 0) impl->options.backoff_initial_ms = 200;
  if (impl->options.backoff_max_ms < impl->options.backoff_initial_ms)
    impl->options.backoff_max_ms = impl->options.backoff_initial_ms;
  if (impl->options.request_timeout_ms <= 0) impl->options.request_timeout_ms = 30000;
  Transport::Options topt;
  topt.ca_file = impl->options.ca_file;
  auto t = Transport::create(loop, topt);
  if (!t.ok()) {
    if (impl->own_loop) {
      uv_run(impl->own_loop.get(), UV_RUN_DEFAULT);
      uv_loop_close(impl->own_loop.get());
    }
    return t.status();
  }
  impl->transport = std::move(*t);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::connect(Callback<Welcome> done) {
  if (impl_->closing) return done(Status::failed_precondition("the client is closed"));
  if (impl_->socket != nullptr || impl_->welcomed_once)
    return done(Status::failed_precondition("already connected or connecting"));
  impl_->connect_done = std::move(done);
  impl_->open_socket();
}

void Client::close(std::function<void()> done) { impl_->close(std::move(done)); }

int Client::run() {
  if (!impl_->own_loop) return -1;
  return uv_run(impl_->own_loop.get(), UV_RUN_DEFAULT);
}

uv_loop_t* Client::loop() const { return impl_->loop; }
void Client::on_event(std::function<void(const Event&)> handler) {
  impl_->event_handler = std::move(handler);
}
void Client::on_state(std::function<void(ClientState, const Status&)> handler) {
  impl_->state_handler = std::move(handler);
}
ClientState Client::state() const { return impl_->state; }
const Welcome& Client::welcome() const { return impl_->welcome; }
const std::map<std::string, int64_t>& Client::last_seen() const { return impl_->last_seen; }

void Client::discover(Callback<SpaceInfo> done) { impl_->discover(std::move(done)); }

void Client::relay_login(const std::string& relay_url, const std::string& username,
                         const std::string& password, Callback<RelaySession> done) {
  Json body(cJSON_CreateObject());
  cJSON_AddStringToObject(body.get(), "username", username.c_str());
  cJSON_AddStringToObject(body.get(), "password", password.c_str());
  Impl* impl = impl_.get();
  std::string relay = trim_slash(relay_url);
  impl->http_json("POST", relay + "/api/v1/sessions", "", print(body.get()),
                  [impl, relay, done](Status st, const cJSON* j, const HttpReply& r) {
                    if (!st.ok()) return done(st);
                    if (r.status != 201 && r.status != 200) return done(http_error(r, "logging in"));
                    RelaySession s;
                    s.session = str(j, "session");
                    s.user = client::user_of(cJSON_GetObjectItemCaseSensitive(j, "user"));
                    if (s.session.empty()) return done(Status::internal("the relay answered no session"));
                    impl->options.relay_url = relay;
                    impl->options.relay_session = s.session;
                    done(s);
                  });
}

void Client::relay_logout(StatusCallback done) {
  Impl* impl = impl_.get();
  if (impl->options.relay_session.empty() || impl->options.relay_url.empty())
    return done(Status::failed_precondition("no relay session"));
  impl->http_json("DELETE", trim_slash(impl->options.relay_url) + "/api/v1/sessions",
                  impl->options.relay_session, "", [impl, done](Status st, const cJSON*, const HttpReply& r) {
                    if (!st.ok()) return done(st);
                    if (r.status != 204 && r.status != 200 && r.status != 401)
                      return done(http_error(r, "logging out"));
                    impl->options.relay_session.clear();
                    done(Status());
                  });
}

void Client::mint_token(Callback<std::string> done) { impl_->mint_token(std::move(done)); }

void Client::relay_spaces(Callback<std::string> done) {
  Impl* impl = impl_.get();
  auto go = [impl, done] {
    impl->http_json("GET", trim_slash(impl->options.relay_url) + "/api/v1/spaces",
                    impl->options.relay_session, "", [done](Status st, const cJSON* j, const HttpReply& r) {
                      if (!st.ok()) return done(st);
                      if (r.status != 200) return done(http_error(r, "the space directory"));
                      if (!cJSON_IsArray(j))
                        return done(Status::internal("the directory is not a JSON array"));
                      done(print(j));
                    });
  };
  if (!impl->options.relay_url.empty()) return go();
  impl->discover([impl, go, done](Result<SpaceInfo> info) {
    if (!info.ok()) return done(info.status());
    if (info->relay.empty()) return done(Status::failed_precondition("the space trusts no relay"));
    impl->options.relay_url = info->relay;
    go();
  });
}
}  // namespace hut

#include "net/lws_context.h"

#include <openssl/ssl.h>

#include <cstring>
#include <mutex>
#include <string_view>

#include "util/log.h"

namespace hut::net {
namespace {

void lws_log_emit(int level, const char* line) {
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  log_write(level == LLL_ERR ? LogLevel::kError : LogLevel::kWarn, "lws", text);
}

}  // namespace

void route_lws_logging(bool warnings) {
  static std::once_flag with_warnings, errors_only;
  if (warnings)
    std::call_once(with_warnings, [] { lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit); });
  else
    std::call_once(errors_only, [] { lws_set_log_level(LLL_ERR, lws_log_emit); });
}

std::string copy_header(struct lws* wsi, enum lws_token_indexes token) {
  int n = lws_hdr_total_length(wsi, token);
  if (n <= 0) return {};
  std::string out(static_cast<size_t>(n) + 1, '\0');
  int got = lws_hdr_copy(wsi, out.data(), n + 1, token);
  if (got < 0) return {};
  out.resize(static_cast<size_t>(got));
  return out;
}

LwsContext::Anchor::~Anchor() {
  if (client_ssl != nullptr) SSL_CTX_free(client_ssl);
}

Result<std::unique_ptr<LwsContext>> LwsContext::create(uv_loop_t* loop, void* owner, Options options) {
  std::unique_ptr<LwsContext> c(new LwsContext(loop));
  struct lws_context_creation_info info;
  std::memset(&info, 0, sizeof info);
  void* loops[1] = {loop};
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN |
                 LWS_SERVER_OPTION_EXPLICIT_VHOSTS | options.lws_options;
  info.foreign_loops = loops;
  c->anchor_ = new Anchor;
  c->anchor_->owner = owner;
  info.pcontext = &c->anchor_->context;
  info.user = c->anchor_;
  if (options.serv_buf_size != 0) info.pt_serv_buf_size = static_cast<unsigned int>(options.serv_buf_size);
  info.count_threads = 1;
  info.port = CONTEXT_PORT_NO_LISTEN;
  c->anchor_->context = lws_create_context(&info);
  if (c->anchor_->context == nullptr)
    return Status::unavailable(
        "cannot create the libwebsockets context (is libwebsockets-evlib-uv installed?)");
  return c;
}

LwsContext::~LwsContext() { release(nullptr); }

void* LwsContext::owner_of(struct lws* wsi) {
  struct lws_context* ctx = lws_get_context(wsi);
  auto* anchor = ctx ? static_cast<Anchor*>(lws_context_user(ctx)) : nullptr;
  return anchor ? anchor->owner : nullptr;
}

void LwsContext::begin_destroy() {
  if (destroy_started_ || get() == nullptr) return;
  destroy_started_ = true;
  lws_context_destroy(get());
}

void LwsContext::finish_destroy() {
  if (get() != nullptr) lws_context_destroy(get());
}

void LwsContext::release(std::function<void()> done) {
  if (anchor_ == nullptr) {
    if (done) done();
    return;
  }
  Anchor* anchor = anchor_;
  anchor_ = nullptr;
  anchor->owner = nullptr;
  if (anchor->context == nullptr) {
    delete anchor;
    if (done) done();
    return;
  }
  if (!destroy_started_) lws_context_destroy(anchor->context);
  reap_later(loop_, anchor, std::move(done));
}

// Finishes the teardown of a context whose first phase ran: after a few loop
// turns (lws's libuv handles are closed by then) the second
// lws_context_destroy() frees it, and with it the evlib module whose code
// those close callbacks run in.
void LwsContext::reap_later(uv_loop_t* loop, Anchor* anchor, std::function<void()> done) {
  struct Reaper {
    uv_timer_t timer;
    Anchor* anchor;
    int turns = 0;
    std::function<void()> done;
  };
  auto* r = new Reaper;
  r->anchor = anchor;
  r->done = std::move(done);
  uv_timer_init(loop, &r->timer);
  r->timer.data = r;
  uv_timer_start(
      &r->timer,
      [](uv_timer_t* t) {
        auto* r = static_cast<Reaper*>(t->data);
        if (++r->turns < 3) return;
        if (r->anchor->context != nullptr) lws_context_destroy(r->anchor->context);
        uv_timer_stop(t);
        uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) {
          auto* r = static_cast<Reaper*>(h->data);
          auto done = std::move(r->done);
          delete r->anchor;
          delete r;
          if (done) done();
        });
      },
      10, 10);
}

}  // namespace hut::net

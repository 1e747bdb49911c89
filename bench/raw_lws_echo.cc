// raw-lws-echo: the smallest fast WebSocket echo server that libwebsockets on
// libuv allows, the comparison point for spaced in bench/run.sh.
//
//   raw-lws-echo [--broadcast] [PORT [ADDRESS]]     (defaults: 0, 127.0.0.1)
//
// It prints `listening on http://ADDRESS:PORT` (the real port when PORT is 0)
// and echoes every message back with the same opcode. With --broadcast it
// sends every whole message to every connected client instead, the sender
// included: the comparison point for a room's fan-out. The broadcast is
// lws's usual pattern: the message is copied once into a shared buffer with
// LWS_PRE headroom, queued on each connection, and each connection writes its
// queue from its own WRITEABLE callback (one lws_write per frame and
// recipient; nothing batched across recipients). The echo does what
// docs/benchmarks.md lists as the fast path for request/reply traffic: a reply
// is written straight from the RECEIVE callback when nothing is queued and the
// socket is not choked, and queued for the WRITEABLE callback otherwise; the
// receive, send and service buffers are 64 KiB; no per-connection validity
// timers (see kNoValidityChecks). No permessage-deflate.
// SIGINT or SIGTERM stops it.
//
// Threads: one, the libuv loop's; lws runs on that loop.
#include <uv.h>
// uv.h first: libwebsockets declares its libuv API only after it.
#include <libwebsockets.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace hut {
namespace {

constexpr size_t kBufferSize = 64 * 1024;
// A message larger than this (all its fragments together) closes the
// connection with 1009.
constexpr size_t kMaxMessage = 16 * 1024 * 1024;

// One message waiting to be written, with LWS_PRE bytes of headroom in front.
// Broadcast shares one buffer among every recipient's queue: lws writes the
// frame header into the headroom (the same bytes for each recipient) and
// copies whatever the socket does not take at once.
struct Frame {
  std::shared_ptr<std::vector<unsigned char>> bytes;
  bool binary = false;
};

// Per-connection state, constructed with placement new in lws's zero-filled
// per-session memory on ESTABLISHED and destroyed on CLOSED. Owned by the
// connection; touched only on the loop thread.
struct Session {
  std::deque<Frame> queue;        // replies not yet written, oldest first
  std::vector<unsigned char> rx;  // a message arriving in pieces
  size_t slot = 0;                // broadcast: where it is in g_members
  bool constructed = false;
};

// Broadcast mode: every established connection, in no particular order.
bool g_broadcast = false;
std::vector<lws*> g_members;

// Reused for direct writes: lws copies whatever it cannot send at once.
std::vector<unsigned char> g_scratch;

int write_frame(lws* wsi, unsigned char* payload, size_t len, bool binary) {
  int n = lws_write(wsi, payload, len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
  return n < 0 ? -1 : 0;
}

Frame make_frame(const unsigned char* data, size_t len, bool binary) {
  Frame f{std::make_shared<std::vector<unsigned char>>(LWS_PRE + len), binary};
  if (len) std::memcpy(f.bytes->data() + LWS_PRE, data, len);
  return f;
}

// Echoes one whole message: straight away when possible, else queued.
int echo(lws* wsi, Session* s, const unsigned char* data, size_t len, bool binary) {
  if (s->queue.empty() && !lws_send_pipe_choked(wsi)) {
    if (g_scratch.size() < LWS_PRE + len) g_scratch.resize(LWS_PRE + len);
    if (len) std::memcpy(g_scratch.data() + LWS_PRE, data, len);
    return write_frame(wsi, g_scratch.data() + LWS_PRE, len, binary);
  }
  s->queue.push_back(make_frame(data, len, binary));
  lws_callback_on_writable(wsi);
  return 0;
}

// Sends one whole message to every connection: queued on each, written on
// its WRITEABLE.
int broadcast(const unsigned char* data, size_t len, bool binary) {
  const Frame f = make_frame(data, len, binary);
  for (lws* member : g_members) {
    static_cast<Session*>(lws_wsi_user(member))->queue.push_back(f);
    lws_callback_on_writable(member);
  }
  return 0;
}

int deliver(lws* wsi, Session* s, const unsigned char* data, size_t len, bool binary) {
  return g_broadcast ? broadcast(data, len, binary) : echo(wsi, s, data, len, binary);
}

int callback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* s = static_cast<Session*>(user);
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
      new (s) Session();
      s->constructed = true;
      if (g_broadcast) {
        s->slot = g_members.size();
        g_members.push_back(wsi);
      }
      return 0;
    case LWS_CALLBACK_RECEIVE: {
      const bool binary = lws_frame_is_binary(wsi) != 0;
      const bool last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
      const auto* data = static_cast<const unsigned char*>(in);
      if (s->rx.empty() && last) return deliver(wsi, s, data, len, binary);
      if (s->rx.size() + len > kMaxMessage) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, nullptr, 0);
        return -1;
      }
      s->rx.insert(s->rx.end(), data, data + len);
      if (!last) return 0;
      int rc = deliver(wsi, s, s->rx.data(), s->rx.size(), binary);
      s->rx.clear();
      return rc;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
      while (!s->queue.empty() && !lws_send_pipe_choked(wsi)) {
        Frame f = std::move(s->queue.front());
        s->queue.pop_front();
        if (write_frame(wsi, f.bytes->data() + LWS_PRE, f.bytes->size() - LWS_PRE, f.binary) < 0) return -1;
      }
      if (!s->queue.empty()) lws_callback_on_writable(wsi);
      return 0;
    case LWS_CALLBACK_CLOSED:
      if (!s || !s->constructed) return 0;
      if (g_broadcast) {
        // Swap-remove: the last member takes this one's slot.
        lws* last_member = g_members.back();
        g_members[s->slot] = last_member;
        static_cast<Session*>(lws_wsi_user(last_member))->slot = s->slot;
        g_members.pop_back();
      }
      s->~Session();
      return 0;
    default:
      return 0;
  }
}

// No validity checks (idle pings and hang-ups). lws's default policy arms a
// timer per connection and re-arms it as traffic confirms the peer; lws keeps
// its timers in one sorted list, so with thousands of connections each arming
// walks thousands of entries.
const lws_retry_bo_t kNoValidityChecks = {};

const lws_protocols kProtocols[] = {
    {"echo", callback, sizeof(Session), kBufferSize, 0, nullptr, kBufferSize},
    {nullptr, nullptr, 0, 0, 0, nullptr, 0},
};

struct Server {
  uv_loop_t loop{};
  uv_signal_t sigint{};
  uv_signal_t sigterm{};
  lws_context* context = nullptr;
  bool stopping = false;
};

void on_signal(uv_signal_t* handle, int /*signum*/) {
  auto* server = static_cast<Server*>(handle->data);
  if (server->stopping) return;
  server->stopping = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&server->sigint), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&server->sigterm), nullptr);
  // The first destroy starts the teardown; lws closes its handles on the loop.
  if (server->context) lws_context_destroy(server->context);
}

int run(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--broadcast") == 0) {
    g_broadcast = true;
    --argc;
    ++argv;
  }
  if (argc > 3 || (argc > 1 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0))) {
    std::fprintf(stderr, "usage: raw-lws-echo [--broadcast] [PORT [ADDRESS]]   (defaults: 0, 127.0.0.1)\n");
    return argc > 3 ? 2 : 0;
  }
  char* end = nullptr;
  long port = argc > 1 ? std::strtol(argv[1], &end, 10) : 0;
  if (argc > 1 && (*end != '\0' || port < 0 || port > 65535)) {
    std::fprintf(stderr, "raw-lws-echo: bad port '%s'\n", argv[1]);
    return 2;
  }
  const char* address = argc > 2 ? argv[2] : "127.0.0.1";

  // Every connection is a file descriptor: allow as many as the hard limit.
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  lws_set_log_level(LLL_ERR, nullptr);
  Server server;
  if (uv_loop_init(&server.loop) != 0) return 1;
  void* loops[] = {&server.loop};

  lws_context_creation_info info{};
  info.port = static_cast<int>(port);
  info.iface = address;
  info.protocols = kProtocols;
  info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
  info.foreign_loops = loops;
  info.pcontext = &server.context;
  info.pt_serv_buf_size = kBufferSize;
  info.retry_and_idle_policy = &kNoValidityChecks;
  info.gid = -1;
  info.uid = -1;
  server.context = lws_create_context(&info);
  if (!server.context) {
    std::fprintf(stderr, "raw-lws-echo: cannot listen on %s:%ld\n", address, port);
    uv_loop_close(&server.loop);
    return 1;
  }
  lws_vhost* vhost = lws_get_vhost_by_name(server.context, "default");
  int real_port = vhost ? lws_get_vhost_listen_port(vhost) : -1;
  std::printf("listening on http://%s:%d\n", address, real_port);
  std::fflush(stdout);

  server.sigint.data = &server;
  server.sigterm.data = &server;
  uv_signal_init(&server.loop, &server.sigint);
  uv_signal_init(&server.loop, &server.sigterm);
  uv_signal_start(&server.sigint, on_signal, SIGINT);
  uv_signal_start(&server.sigterm, on_signal, SIGTERM);

  uv_run(&server.loop, UV_RUN_DEFAULT);
  // The loop drained: the second destroy frees what the first one closed.
  if (server.context) lws_context_destroy(server.context);
  int rc = uv_loop_close(&server.loop);
  if (rc != 0) std::fprintf(stderr, "raw-lws-echo: loop not empty at exit: %s\n", uv_strerror(rc));
  return rc == 0 ? 0 : 1;
}

}  // namespace
}  // namespace hut

int main(int argc, char** argv) { return hut::run(argc, argv); }

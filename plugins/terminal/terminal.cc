// The terminal plugin: its widget <hut-terminal> shows the `hut` client
// running on the server in a pseudo-terminal, through xterm.js, signed in as
// the browser's own user with a token minted for that session alone (ABI 1.4
// mint_session_token), passed in hut's environment.
//
// Off unless terminal.toml says `enabled = true`: a disabled plugin fails its
// init with that reason, so it offers no widget, no asset and no op.
//
// Threads: the hooks run on the space's loop. The terminals (processes,
// pseudo-terminals, timers) live on a libuv loop of the plugin's own thread,
// the worker: hooks hand it commands through a queue and a uv_async; it sends
// output back with host->post, whose callbacks run on the space's loop and
// send the widget events. Nothing here blocks the space's loop.
#include <fcntl.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <uv.h>

#include <cJSON.h>
#include <hutopia/plugin.h>
#include <hutopia/plugin_assets.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "message.h"

#ifndef HUT_TERMINAL_DEFAULT_HUT
#define HUT_TERMINAL_DEFAULT_HUT "/usr/bin/hut"
#endif
#ifndef HUT_TERMINAL_BUILT_HUT
#define HUT_TERMINAL_BUILT_HUT ""
#endif

namespace {

using hut::terminal::Message;
using hut::terminal::Op;

const hut_widget_desc kWidgets[] = {{"hut-terminal", "widget.js"}};

}  // namespace

HUT_DECLARE_ASSETS(terminal_assets)

namespace {

const hut_plugin_descriptor* descriptor() {
  static const hut_plugin_descriptor d = {HUT_PLUGIN_ABI_MAJOR,
                                          HUT_PLUGIN_ABI_MINOR,
                                          "terminal",
                                          "1.0.0",
                                          nullptr,
                                          kWidgets,
                                          1,
                                          HUT_ASSET_FIELDS(terminal_assets),
                                          0};
  return &d;
}

struct Config {
  bool enabled = false;
  std::string hut;        // the hut binary
  std::string space_url;  // what hut connects to (HUTOPIA_SPACE)
  std::string ca_file;    // HUTOPIA_CA_FILE for hut, optional
  std::string term = "xterm-256color";
  int64_t idle_timeout_s = 900;  // no input for this long ends the terminal
  int64_t output_rate = 65536;   // bytes per second of output, per terminal
  int64_t max_terminals = 16;    // at once, in the whole space
  int64_t kill_grace_ms = 2000;  // between SIGTERM and SIGKILL
  int64_t token_ttl_s = 60;
};

struct Command {
  Op op = Op::kOpen;
  bool stop = false;  // the plugin is being unloaded
  std::string session;
  std::string token;
  int cols = 80, rows = 24;
  std::string input;
};

struct Plugin;

// One terminal: a hut process on a pseudo-terminal. Worker thread only.
struct Term {
  Plugin* p = nullptr;
  std::string session;
  uv_process_t proc{};
  uv_poll_t poll{};
  uv_timer_t timer{};
  int master = -1;
  int open_handles = 0;
  bool running = false;  // the process was spawned and has not exited
  bool polling = false;
  bool eof = false;      // the terminal's other side is closed
  bool closing = false;  // handles are being closed
  bool killed = false;   // SIGTERM sent
  uint64_t kill_at_ms = 0;
  uint64_t last_input_ms = 0;
  double tokens = 0;  // output bytes it may send now
  uint64_t last_notice_ms = 0;
};

// An event for a session, from the worker to the space's loop.
struct Outgoing {
  std::string session;
  std::string json;
};

struct Plugin {
  const hut_host* host = nullptr;
  hut_plugin* self = nullptr;
  Config cfg;
  std::string home;  // the plugin's data dir: hut's HOME and working directory

  std::mutex mu;
  std::deque<Command> commands;    // guarded by mu
  std::set<std::string> sessions;  // sessions with a terminal; guarded by mu
  std::set<Outgoing*> posted;      // handed to host->post, not yet run; guarded by mu
  bool stopping = false;           // guarded by mu

  std::thread worker;
  uv_loop_t loop{};
  uv_async_t wake{};
  std::unordered_map<std::string, Term*> terms;  // worker only
};

Plugin* g = nullptr;

uint64_t now_ms(Plugin* p) { return uv_now(&p->loop); }

void plog(Plugin* p, int level, const std::string& text) { p->host->log(p->self, level, text.c_str()); }

// ---- Events back to the session (any thread -> the space's loop) ----

void deliver(hut_plugin* self, void* arg) {
  auto* o = static_cast<Outgoing*>(arg);
  Plugin* p = g;
  if (p != nullptr) {
    {
      std::lock_guard<std::mutex> lock(p->mu);
      p->posted.erase(o);
    }
    p->host->send_widget_event(self, HUT_TARGET_SESSION, o->session.c_str(), o->json.data(), o->json.size());
  }
  delete o;
}

void send_event(Plugin* p, const std::string& session, cJSON* obj) {
  char* text = cJSON_PrintUnformatted(obj);
  cJSON_Delete(obj);
  if (text == nullptr) return;
  auto* o = new Outgoing{session, text};
  cJSON_free(text);
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->posted.insert(o);
  }
  if (p->host->post(p->self, deliver, o) != HUT_OK) {
    std::lock_guard<std::mutex> lock(p->mu);
    p->posted.erase(o);
    delete o;
  }
}

void send_notice(Plugin* p, const std::string& session, const std::string& text) {
  cJSON* o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "op", "notice");
  cJSON_AddStringToObject(o, "text", text.c_str());
  send_event(p, session, o);
}

void send_output(Plugin* p, const std::string& session, const unsigned char* data, size_t n) {
  std::string b64(4 * ((n + 2) / 3) + 1, '\0');
  int len = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()), data, static_cast<int>(n));
  b64.resize(len > 0 ? static_cast<size_t>(len) : 0);
  cJSON* o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "op", "output");
  cJSON_AddStringToObject(o, "data", b64.c_str());
  send_event(p, session, o);
}

// ---- Terminals (worker thread) ----

void handle_closed(uv_handle_t* h) {
  auto* t = static_cast<Term*>(h->data);
  if (--t->open_handles == 0) delete t;
}

// Ends a terminal whose process is gone: closes its handles and forgets it.
void finish(Term* t) {
  if (t->closing) return;
  t->closing = true;
  Plugin* p = t->p;
  p->terms.erase(t->session);
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->sessions.erase(t->session);
    stopping = p->stopping;
  }
  // The last terminal of a plugin being stopped ends the worker's loop.
  if (stopping && p->terms.empty() && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&p->wake)))
    uv_close(reinterpret_cast<uv_handle_t*>(&p->wake), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->timer), handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->poll), handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&t->proc), handle_closed);
  if (t->master >= 0) ::close(t->master);
  t->master = -1;
}

void end_term(Term* t, const char* why) {
  if (!t->running || t->killed) return;
  t->killed = true;
  t->kill_at_ms = now_ms(t->p) + static_cast<uint64_t>(t->p->cfg.kill_grace_ms);
  if (why != nullptr) send_notice(t->p, t->session, why);
  uv_process_kill(&t->proc, SIGTERM);
}

void process_exited(uv_process_t* proc, int64_t status, int signal) {
  auto* t = static_cast<Term*>(proc->data);
  t->running = false;
  cJSON* o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "op", "exit");
  cJSON_AddNumberToObject(o, "status", static_cast<double>(status));
  if (signal != 0) cJSON_AddNumberToObject(o, "signal", signal);
  send_event(t->p, t->session, o);
  finish(t);
}

void start_polling(Term* t);

void on_readable(uv_poll_t* h, int status, int events) {
  auto* t = static_cast<Term*>(h->data);
  (void)events;
  if (status < 0) {
    uv_poll_stop(&t->poll);
    t->polling = false;
    return;
  }
  unsigned char buf[16384];
  size_t want = std::min(sizeof buf, static_cast<size_t>(std::max(0.0, t->tokens)));
  if (want == 0) {
    uv_poll_stop(&t->poll);
    t->polling = false;
    return;
  }
  ssize_t n = ::read(t->master, buf, want);
  if (n > 0) {
    t->tokens -= static_cast<double>(n);
    send_output(t->p, t->session, buf, static_cast<size_t>(n));
    if (t->tokens < 1) {
      // Over the rate: stop reading until the bucket refills. hut then
      // blocks on its writes; nothing piles up here.
      uv_poll_stop(&t->poll);
      t->polling = false;
      uint64_t now = now_ms(t->p);
      if (now - t->last_notice_ms > 10000 || t->last_notice_ms == 0) {
        t->last_notice_ms = now;
        send_notice(t->p, t->session,
                    "output held back: over " + std::to_string(t->p->cfg.output_rate) + " bytes/s");
      }
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  // EOF or EIO: the other side of the terminal is closed (hut exited).
  uv_poll_stop(&t->poll);
  t->polling = false;
  t->eof = true;
}

void start_polling(Term* t) {
  if (t->polling || t->closing || t->eof || t->master < 0) return;
  if (uv_poll_start(&t->poll, UV_READABLE, on_readable) == 0) t->polling = true;
}

// Every 100 ms: refills the output budget, ends idle terminals, and sends
// SIGKILL to one that outlived its SIGTERM by the grace time.
void on_tick(uv_timer_t* h) {
  auto* t = static_cast<Term*>(h->data);
  Plugin* p = t->p;
  const double rate = static_cast<double>(p->cfg.output_rate);
  t->tokens = std::min(rate, t->tokens + rate / 10.0);
  if (!t->polling && t->tokens >= 1 && !t->closing) start_polling(t);
  uint64_t now = now_ms(p);
  if (t->running && !t->killed &&
      now - t->last_input_ms > static_cast<uint64_t>(p->cfg.idle_timeout_s) * 1000)
    end_term(t, "the terminal was idle for too long and is closed");
  if (t->running && t->killed && now >= t->kill_at_ms) {
    uv_process_kill(&t->proc, SIGKILL);
    t->kill_at_ms = now + 1000;
  }
}

// A pseudo-terminal pair of the given size, both ends close-on-exec from
// the start (openpty() leaves a moment in which a program that another
// thread of the process starts would inherit them); the master end does not
// block. The error, or an empty string.
std::string open_pty(const struct winsize* ws, int* master, int* slave) {
  int m = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (m < 0) return std::string("posix_openpt: ") + strerror(errno);
  char name[128];
  if (::grantpt(m) != 0 || ::unlockpt(m) != 0 || ::ptsname_r(m, name, sizeof(name)) != 0) {
    std::string why = std::string("pty: ") + strerror(errno);
    ::close(m);
    return why;
  }
  int sl = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (sl < 0) {
    std::string why = std::string("open ") + name + ": " + strerror(errno);
    ::close(m);
    return why;
  }
  if (::ioctl(sl, TIOCSWINSZ, ws) != 0) {
    std::string why = std::string("TIOCSWINSZ: ") + strerror(errno);
    ::close(sl);
    ::close(m);
    return why;
  }
  *master = m;
  *slave = sl;
  return std::string();
}

void open_term(Plugin* p, const Command& c) {
  auto fail = [&](const std::string& why) {
    plog(p, HUT_LOG_ERROR, "cannot start a terminal: " + why);
    send_notice(p, c.session, "the terminal could not start");
    cJSON* o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "op", "exit");
    cJSON_AddNumberToObject(o, "status", -1);
    send_event(p, c.session, o);
    std::lock_guard<std::mutex> lock(p->mu);
    p->sessions.erase(c.session);
  };
  struct winsize ws {};
  ws.ws_col = static_cast<unsigned short>(c.cols);
  ws.ws_row = static_cast<unsigned short>(c.rows);
  int master = -1, slave = -1;
  std::string pty_error = open_pty(&ws, &master, &slave);
  if (!pty_error.empty()) return fail(pty_error);

  // A fixed argv and a minimal environment: the token never on a command line.
  std::vector<std::string> env_s = {"HUTOPIA_SPACE=" + p->cfg.space_url,
                                    "HUTOPIA_TOKEN=" + c.token,
                                    "TERM=" + p->cfg.term,
                                    "LANG=C.UTF-8",
                                    "LC_ALL=C.UTF-8",
                                    "PATH=/usr/bin:/bin"};
  if (!p->cfg.ca_file.empty()) env_s.push_back("HUTOPIA_CA_FILE=" + p->cfg.ca_file);
  const char* home = p->home.empty() ? nullptr : p->home.c_str();
  if (home != nullptr) {
    env_s.push_back("HOME=" + p->home);
    env_s.push_back("XDG_CONFIG_HOME=" + p->home);
  }
  std::vector<char*> env;
  for (auto& e : env_s) env.push_back(e.data());
  env.push_back(nullptr);
  std::string argv0 = "hut";
  char* args[] = {argv0.data(), nullptr};

  auto* t = new Term;
  t->p = p;
  t->session = c.session;
  t->master = master;
  t->tokens = static_cast<double>(p->cfg.output_rate);
  t->last_input_ms = now_ms(p);

  uv_stdio_container_t stdio[3];
  for (auto& s : stdio) {
    s.flags = UV_INHERIT_FD;
    s.data.fd = slave;
  }
  uv_process_options_t opt{};
  opt.exit_cb = process_exited;
  opt.file = p->cfg.hut.c_str();
  opt.args = args;
  opt.env = env.data();
  opt.cwd = home;
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.flags = UV_PROCESS_DETACHED;  // a session of its own (setsid)
  t->proc.data = t;
  int rc = uv_spawn(&p->loop, &t->proc, &opt);
  ::close(slave);
  if (rc != 0) {
    ::close(master);
    // A failed spawn still initialised the handle, which must be closed.
    t->open_handles = 1;
    uv_close(reinterpret_cast<uv_handle_t*>(&t->proc), handle_closed);
    return fail(p->cfg.hut + ": " + uv_strerror(rc));
  }
  t->running = true;
  t->open_handles = 3;
  uv_poll_init(&p->loop, &t->poll, master);
  t->poll.data = t;
  uv_timer_init(&p->loop, &t->timer);
  t->timer.data = t;
  uv_timer_start(&t->timer, on_tick, 100, 100);
  p->terms[c.session] = t;
  start_polling(t);
  plog(p, HUT_LOG_INFO, "terminal started, pid " + std::to_string(t->proc.pid));
}

void run_command(Plugin* p, Command& c) {
  if (c.stop) {
    for (auto& [session, t] : p->terms) end_term(t, "the terminal plugin is stopping");
    return;
  }
  if (c.op == Op::kOpen) return open_term(p, c);
  auto it = p->terms.find(c.session);
  if (it == p->terms.end()) return;
  Term* t = it->second;
  switch (c.op) {
    case Op::kInput: {
      t->last_input_ms = now_ms(p);
      // Small writes into a terminal hut reads at once; what the terminal
      // cannot take now is dropped, never queued without bound.
      ssize_t n = ::write(t->master, c.input.data(), c.input.size());
      if (n < static_cast<ssize_t>(c.input.size()))
        send_notice(p, c.session, "input dropped: the terminal is busy");
      break;
    }
    case Op::kResize: {
      struct winsize ws {};
      ws.ws_col = static_cast<unsigned short>(c.cols);
      ws.ws_row = static_cast<unsigned short>(c.rows);
      // hut has no controlling terminal, so the kernel does not signal it:
      // SIGWINCH is sent here, after the size changed.
      if (::ioctl(t->master, TIOCSWINSZ, &ws) == 0 && t->running) uv_process_kill(&t->proc, SIGWINCH);
      break;
    }
    case Op::kClose:
      end_term(t, nullptr);
      break;
    case Op::kOpen:
      break;
  }
}

void on_wake(uv_async_t* h) {
  auto* p = static_cast<Plugin*>(h->data);
  std::deque<Command> todo;
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    todo.swap(p->commands);
    stopping = p->stopping;
  }
  for (Command& c : todo) run_command(p, c);
  if (stopping && p->terms.empty() && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&p->wake)))
    uv_close(reinterpret_cast<uv_handle_t*>(&p->wake), nullptr);
}

void push(Plugin* p, Command c) {
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->commands.push_back(std::move(c));
  }
  uv_async_send(&p->wake);
}

// ---- Hooks (the space's loop) ----

int on_widget(hut_plugin* self, void* user_data, const hut_widget_request* req) {
  auto* p = static_cast<Plugin*>(user_data);
  Message m;
  std::string why = hut::terminal::parse_message(req->data_json, req->data_len, &m);
  if (!why.empty()) return p->host->reply_error(self, req->request_id, "bad_request", why.c_str());
  const std::string session = req->session_id;
  bool has;
  size_t count;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    has = p->sessions.count(session) > 0;
    count = p->sessions.size();
  }
  if (m.op == Op::kOpen) {
    if (has)
      return p->host->reply_error(self, req->request_id, "conflict",
                                  "this session has a terminal open already");
    if (count >= static_cast<size_t>(p->cfg.max_terminals))
      return p->host->reply_error(self, req->request_id, "unavailable",
                                  "too many terminals are open; try later");
    char token[4096];
    size_t len = 0;
    int rc = p->host->mint_session_token(self, session.c_str(), static_cast<uint32_t>(p->cfg.token_ttl_s),
                                         token, sizeof token, &len);
    if (rc != HUT_OK) {
      plog(p, HUT_LOG_ERROR, std::string("cannot mint a token for a terminal: ") + p->host->strerror(rc));
      return p->host->reply_error(self, req->request_id, "unavailable", "cannot sign in the terminal");
    }
    Command c;
    c.op = Op::kOpen;
    c.session = session;
    c.token.assign(token, len);
    std::memset(token, 0, sizeof token);
    c.cols = m.cols;
    c.rows = m.rows;
    {
      std::lock_guard<std::mutex> lock(p->mu);
      p->sessions.insert(session);
    }
    push(p, std::move(c));
    static const char ok[] = "{\"open\":true}";
    return p->host->reply(self, req->request_id, ok, sizeof ok - 1);
  }
  if (!has)
    return p->host->reply_error(self, req->request_id, "not_found", "no terminal is open in this session");
  Command c;
  c.op = m.op;
  c.session = session;
  c.cols = m.cols;
  c.rows = m.rows;
  c.input = std::move(m.input);
  push(p, std::move(c));
  return p->host->reply(self, req->request_id, "{}", 2);
}

void on_session_closed(hut_plugin* self, void* user_data, const char* session_id, const hut_user* user) {
  (void)self;
  (void)user;
  auto* p = static_cast<Plugin*>(user_data);
  {
    std::lock_guard<std::mutex> lock(p->mu);
    if (p->sessions.count(session_id) == 0) return;
  }
  Command c;
  c.op = Op::kClose;
  c.session = session_id;
  push(p, std::move(c));
}

// ---- Configuration ----

std::string read_config(const char* json, Config* cfg) {
  std::unique_ptr<cJSON, void (*)(cJSON*)> root(cJSON_Parse(json ? json : "{}"), cJSON_Delete);
  if (!cJSON_IsObject(root.get())) return "the configuration is not an object";
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(root.get(), "enabled");
  if (v != nullptr && !cJSON_IsBool(v)) return "enabled must be true or false";
  cfg->enabled = cJSON_IsTrue(v);
  auto str = [&](const char* key, std::string* out) -> std::string {
    const cJSON* s = cJSON_GetObjectItemCaseSensitive(root.get(), key);
    if (s == nullptr) return {};
    if (!cJSON_IsString(s)) return std::string(key) + " must be a string";
    *out = s->valuestring;
    return {};
  };
  auto num = [&](const char* key, int64_t lo, int64_t hi, int64_t* out) -> std::string {
    const cJSON* n = cJSON_GetObjectItemCaseSensitive(root.get(), key);
    if (n == nullptr) return {};
    if (!cJSON_IsNumber(n) || n->valuedouble < static_cast<double>(lo) ||
        n->valuedouble > static_cast<double>(hi))
      return std::string(key) + " must be a number of " + std::to_string(lo) + "-" + std::to_string(hi);
    *out = static_cast<int64_t>(n->valuedouble);
    return {};
  };
  std::string e;
  if (!(e = str("hut", &cfg->hut)).empty()) return e;
  if (!(e = str("space_url", &cfg->space_url)).empty()) return e;
  if (!(e = str("ca_file", &cfg->ca_file)).empty()) return e;
  if (!(e = str("term", &cfg->term)).empty()) return e;
  if (!(e = num("idle_timeout", 10, 86400, &cfg->idle_timeout_s)).empty()) return e;
  if (!(e = num("output_rate", 1024, 16 * 1024 * 1024, &cfg->output_rate)).empty()) return e;
  if (!(e = num("max_terminals", 1, 10000, &cfg->max_terminals)).empty()) return e;
  if (!(e = num("kill_grace_ms", 100, 60000, &cfg->kill_grace_ms)).empty()) return e;
  if (!(e = num("token_ttl", 5, 300, &cfg->token_ttl_s)).empty()) return e;
  if (cfg->hut.empty()) {
    cfg->hut = HUT_TERMINAL_DEFAULT_HUT;
    if (::access(cfg->hut.c_str(), X_OK) != 0 && HUT_TERMINAL_BUILT_HUT[0] != '\0')
      cfg->hut = HUT_TERMINAL_BUILT_HUT;
  }
  if (cfg->hut.empty() || cfg->hut[0] != '/') return "hut must be an absolute path";
  if (cfg->term.empty() || cfg->term.find_first_of("=\n") != std::string::npos)
    return "term is not a terminal name";
  return {};
}

void fill(char* err, size_t errlen, const std::string& text) {
  if (err != nullptr && errlen > 0) std::snprintf(err, errlen, "%s", text.c_str());
}

}  // namespace

extern "C" {

HUT_PLUGIN_EXPORT const hut_plugin_descriptor* hut_plugin_describe(void) { return descriptor(); }

HUT_PLUGIN_EXPORT int hut_plugin_init(const hut_host* host, hut_plugin* self, const char* config_json,
                                      char* err, size_t errlen) {
  auto p = std::make_unique<Plugin>();
  p->host = host;
  p->self = self;
  std::string why = read_config(config_json, &p->cfg);
  if (!why.empty()) {
    fill(err, errlen, "terminal.toml: " + why);
    return HUT_EINVAL;
  }
  if (!p->cfg.enabled) {
    fill(err, errlen, "not enabled (set enabled = true in terminal.toml to offer the terminal)");
    return HUT_EPERM;
  }
  if (!HUT_HOST_HAS(host, mint_session_token) || !HUT_HOST_HAS(host, data_dir)) {
    fill(err, errlen, "this space cannot mint session tokens (plugin ABI 1.4 needed)");
    return HUT_ENOTSUP;
  }
  if (p->cfg.space_url.empty()) {
    fill(err, errlen, "terminal.toml: space_url is required (the URL hut connects to)");
    return HUT_EINVAL;
  }
  if (::access(p->cfg.hut.c_str(), X_OK) != 0) {
    fill(err, errlen, "terminal.toml: hut = \"" + p->cfg.hut + "\" is not an executable file");
    return HUT_EINVAL;
  }
  if (const char* dir = host->data_dir(self)) p->home = dir;
  if (uv_loop_init(&p->loop) != 0) {
    fill(err, errlen, "cannot start an event loop");
    return HUT_EINTERNAL;
  }
  p->wake.data = p.get();
  uv_async_init(&p->loop, &p->wake, on_wake);
  hut_hooks hooks{};
  hooks.user_data = p.get();
  hooks.on_widget = on_widget;
  hooks.on_session_closed = on_session_closed;
  int rc = host->register_hooks(self, &hooks, sizeof hooks);
  if (rc != HUT_OK) {
    uv_close(reinterpret_cast<uv_handle_t*>(&p->wake), nullptr);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    fill(err, errlen, "cannot register hooks");
    return rc;
  }
  Plugin* raw = p.get();
  raw->worker = std::thread([raw] { uv_run(&raw->loop, UV_RUN_DEFAULT); });
  g = p.release();
  return HUT_OK;
}

// Ends every terminal (SIGTERM, SIGKILL after the grace time, each reaped),
// then the worker.
HUT_PLUGIN_EXPORT void hut_plugin_fini(hut_plugin* self) {
  (void)self;
  Plugin* p = g;
  if (p == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(p->mu);
    p->stopping = true;
    Command c;
    c.stop = true;
    p->commands.push_back(std::move(c));
  }
  uv_async_send(&p->wake);
  p->worker.join();
  uv_loop_close(&p->loop);
  {
    std::lock_guard<std::mutex> lock(p->mu);
    for (Outgoing* o : p->posted) delete o;  // dropped by the space with the plugin
    p->posted.clear();
  }
  g = nullptr;
  delete p;
}

}  // extern "C"

// hut: the terminal client of a Hutopia space (contract section 11).
//
//   hut [--space URL] [--token TOKEN] [--ca-file FILE] COMMAND
//
// Exit codes: 0 done, 1 refused by the space (its error code on stderr),
// 2 bad usage, 3 cannot connect or authenticate.
#include <hutopia/client.h>
#include <hutopia/version.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "tui.h"
#include "util/file.h"

namespace {

constexpr int kOk = 0;
constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kNoConnection = 3;

const char kHelp[] =
    "Usage: hut [--space URL] [--token TOKEN] [--ca-file FILE] COMMAND [ARGS]\n"
    "\n"
    "The terminal client of a Hutopia space.\n"
    "\n"
    "Commands:\n"
    "  login RELAY_URL                    ask a username and password and keep the relay session\n"
    "  logout                             end the relay session and forget it\n"
    "  spaces                             the relay's directory of spaces\n"
    "  post ROOM TEXT                     post TEXT to ROOM; prints the message's seq\n"
    "  history ROOM [--limit N] [--json]  the newest N messages (default 50), oldest first\n"
    "  tail ROOM [--json]                 follow ROOM until interrupted, one event per line\n"
    "  (none)                             the interactive client (needs a terminal; /help inside)\n"
    "\n"
    "Options:\n"
    "  --space URL      the space (also HUTOPIA_SPACE), e.g. https://chat.example.org\n"
    "  --token TOKEN    a relay or app token (also HUTOPIA_TOKEN); without one, a token is\n"
    "                   minted with the relay session kept by `hut login`\n"
    "  --ca-file FILE   PEM trust anchors for TLS instead of the system's (also HUTOPIA_CA_FILE)\n"
    "  --help, --version\n"
    "\n"
    "The relay session is kept in $XDG_CONFIG_HOME/hutopia/session.json (mode 0600).\n"
    "Exit codes: 0 done, 1 refused by the space (the error code on stderr), 2 bad usage,\n"
    "3 cannot connect or authenticate.\n";

int usage(const std::string& why) {
  std::fprintf(stderr, "hut: %s\nTry 'hut --help'.\n", why.c_str());
  return kUsage;
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string config_dir() {
  std::string base = env("XDG_CONFIG_HOME");
  if (base.empty()) {
    std::string home = env("HOME");
    if (home.empty()) return {};
    base = home + "/.config";
  }
  return base + "/hutopia";
}

std::string session_path() {
  std::string dir = config_dir();
  return dir.empty() ? std::string() : dir + "/session.json";
}

struct SavedSession {
  std::string relay;
  std::string session;
  std::string username;
};

bool load_session(SavedSession* out) {
  std::ifstream in(session_path(), std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  cJSON* j = cJSON_Parse(ss.str().c_str());
  if (!cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return false;
  }
  auto get = [&](const char* k) {
    const cJSON* v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsString(v) ? std::string(v->valuestring) : std::string();
  };
  out->relay = get("relay");
  out->session = get("session");
  out->username = get("username");
  cJSON_Delete(j);
  return !out->relay.empty() && !out->session.empty();
}

// Written whole or not at all, mode 0600 (util::write_file_atomic).
bool save_session(const SavedSession& s, std::string* error) {
  std::string dir = config_dir();
  if (dir.empty()) {
    *error = "no HOME or XDG_CONFIG_HOME";
    return false;
  }
  std::string parent = dir.substr(0, dir.rfind('/'));
  ::mkdir(parent.c_str(), 0700);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    *error = dir + ": " + std::strerror(errno);
    return false;
  }
  cJSON* j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "relay", s.relay.c_str());
  cJSON_AddStringToObject(j, "session", s.session.c_str());
  cJSON_AddStringToObject(j, "username", s.username.c_str());
  char* text = cJSON_Print(j);
  std::string body = text ? text : "{}";
  cJSON_free(text);
  cJSON_Delete(j);
  body += "\n";
  if (hut::Status st = hut::util::write_file_atomic(session_path(), body); !st.ok()) {
    *error = std::string(st.message());
    return false;
  }
  return true;
}

// A line from stdin; with echo off when it is a terminal and `secret`.
bool read_line(const char* prompt, bool secret, std::string* out) {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  if (tty) {
    std::fputs(prompt, stderr);
    std::fflush(stderr);
  }
  termios old{};
  bool restore = false;
  if (tty && secret && ::tcgetattr(STDIN_FILENO, &old) == 0) {
    termios quiet = old;
    quiet.c_lflag &= static_cast<tcflag_t>(~ECHO);
    restore = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
  }
  bool ok = static_cast<bool>(std::getline(std::cin, *out));
  if (restore) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::fputc('\n', stderr);
  }
  if (!out->empty() && out->back() == '\r') out->pop_back();
  return ok;
}

// Exit code and stderr line for a failed call.
int refused(const hut::Status& st) {
  std::string code = hut::wire_code(st);
  if (st.code() == hut::Status::Code::kUnavailable || st.code() == hut::Status::Code::kUnauthenticated) {
    std::fprintf(stderr, "hut: %s\n", std::string(st.message()).c_str());
    return kNoConnection;
  }
  if (code.empty()) code = "error";
  std::string msg(st.message());
  if (msg.rfind(code + ": ", 0) == 0) msg = msg.substr(code.size() + 2);
  std::fprintf(stderr, "%s: %s\n", code.c_str(), msg.c_str());
  return kRefused;
}

std::string clock_of(int64_t ts_ms) { return hut::tui::local_time(ts_ms, "%Y-%m-%d %H:%M"); }

std::string message_line(const hut::Message& m) {
  std::string line = "#" + std::to_string(m.seq) + " " + clock_of(m.ts) + " " +
                     (m.from.name.empty() ? m.from.id : m.from.name) + ": " + m.text;
  if (m.edited_ts != 0) line += " (edited)";
  return line;
}

std::string message_json(const hut::Message& m) {
  cJSON* j = cJSON_CreateObject();
  cJSON_AddStringToObject(j, "room", m.room.c_str());
  cJSON_AddNumberToObject(j, "seq", static_cast<double>(m.seq));
  cJSON_AddNumberToObject(j, "ts", static_cast<double>(m.ts));
  cJSON* from = cJSON_AddObjectToObject(j, "from");
  cJSON_AddStringToObject(from, "id", m.from.id.c_str());
  cJSON_AddStringToObject(from, "name", m.from.name.c_str());
  if (!m.from.avatar.empty()) cJSON_AddStringToObject(from, "avatar", m.from.avatar.c_str());
  cJSON_AddStringToObject(j, "text", m.text.c_str());
  if (!m.data_json.empty()) cJSON_AddItemToObject(j, "data", cJSON_Parse(m.data_json.c_str()));
  if (m.edited_ts != 0) cJSON_AddNumberToObject(j, "edited_ts", static_cast<double>(m.edited_ts));
  char* t = cJSON_PrintUnformatted(j);
  std::string out = t ? t : "{}";
  cJSON_free(t);
  cJSON_Delete(j);
  return out;
}

std::string event_line(const hut::Event& e) {
  if (e.op == "message") return message_line(e.message);
  std::string who = e.user.name.empty() ? e.user.id : e.user.name;
  if (e.op == "edited") return "#" + std::to_string(e.seq) + " edited: " + e.text;
  if (e.op == "deleted") return "#" + std::to_string(e.seq) + " deleted";
  if (e.op == "joined") return who + " joined";
  if (e.op == "left") return who + " left";
  if (e.op == "typing") return who + " is typing";
  if (e.op == "kicked") return "kicked by " + (e.by.name.empty() ? e.by.id : e.by.name);
  if (e.op == "muted") return who + " muted";
  if (e.op == "unmuted") return who + " unmuted";
  if (e.op == "role") return who + " is now " + e.role;
  if (e.op == "muted_all") return std::string("everyone ") + (e.on ? "muted" : "unmuted");
  if (e.op == "room_removed") return "the room was removed";
  return e.json;
}

struct Globals {
  std::string space;
  std::string token;
  std::string ca_file;
};

// Builds a client for the space with the token or the kept relay session.
int make_client(const Globals& g, uv_loop_t* loop, std::unique_ptr<hut::Client>* out) {
  if (g.space.empty()) return usage("no space: give --space URL or set HUTOPIA_SPACE");
  hut::ClientOptions o;
  o.space_url = g.space;
  o.ca_file = g.ca_file;
  o.token = g.token;
  if (o.token.empty()) {
    SavedSession s;
    if (!load_session(&s)) {
      std::fprintf(stderr, "hut: no token: give --token, set HUTOPIA_TOKEN, or run 'hut login RELAY_URL'\n");
      return kNoConnection;
    }
    o.relay_url = s.relay;
    o.relay_session = s.session;
  }
  auto c = hut::Client::create(o, loop);
  if (!c.ok()) {
    if (c.status().is_invalid_argument()) return usage(std::string(c.status().message()));
    std::fprintf(stderr, "hut: %s\n", std::string(c.status().message()).c_str());
    return kNoConnection;
  }
  *out = std::move(*c);
  return kOk;
}

// Runs `body` once connected, on a loop of its own; returns the exit code
// that body set through `finish`.
using Finish = std::function<void(int code)>;
int with_connection(const Globals& g, const std::function<void(hut::Client*, Finish)>& body,
                    bool handle_signals = false) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::unique_ptr<hut::Client> client;
  int rc = make_client(g, &loop, &client);
  if (rc != kOk) {
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
  }
  int exit_code = kOk;
  bool finished = false;
  uv_signal_t sigs[2];
  int nsigs = 0;
  Finish finish = [&](int code) {
    if (finished) return;
    finished = true;
    exit_code = code;
    for (int i = 0; i < nsigs; ++i) uv_close(reinterpret_cast<uv_handle_t*>(&sigs[i]), nullptr);
    nsigs = 0;
    client->close();
  };
  if (handle_signals) {
    for (int signum : {SIGINT, SIGTERM}) {
      uv_signal_init(&loop, &sigs[nsigs]);
      sigs[nsigs].data = &finish;
      uv_signal_start(
          &sigs[nsigs], [](uv_signal_t* h, int) { (*static_cast<Finish*>(h->data))(kOk); }, signum);
      ++nsigs;
    }
  }
  client->on_state([&](hut::ClientState s, const hut::Status& why) {
    if (s == hut::ClientState::kReconnecting && !why.ok())
      std::fprintf(stderr, "hut: %s; reconnecting\n", std::string(why.message()).c_str());
  });
  client->connect([&](hut::Result<hut::Welcome> w) {
    if (!w.ok()) {
      std::fprintf(stderr, "hut: cannot connect: %s\n", std::string(w.status().message()).c_str());
      finish(kNoConnection);
      return;
    }
    body(client.get(), finish);
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  client.reset();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return exit_code;
}

// Runs `body(client, &rc)` with a client of `o`, used for its relay calls, on
// a loop of its own until body's callbacks close the client; returns rc (kOk
// unless body set it), or a usage error when no client can be made of `o`.
int with_relay_client(const hut::ClientOptions& o, const std::function<void(hut::Client*, int* rc)>& body) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = kOk;
  auto c = hut::Client::create(o, &loop);
  if (!c.ok()) {
    rc = usage(std::string(c.status().message()));
  } else {
    std::unique_ptr<hut::Client> client = std::move(*c);
    body(client.get(), &rc);
    uv_run(&loop, UV_RUN_DEFAULT);
    client.reset();
  }
  // Whatever the client closed while being destroyed.
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc;
}

int cmd_login(const Globals& g, const std::vector<std::string>& args) {
  if (args.size() != 1) return usage("login takes one argument, the relay's URL");
  std::string relay = args[0];
  while (!relay.empty() && relay.back() == '/') relay.pop_back();
  std::string username, password;
  if (!read_line("Username: ", false, &username) || username.empty()) return usage("no username given");
  if (!read_line("Password: ", true, &password)) return usage("no password given");
  hut::ClientOptions o;
  o.space_url = relay;  // only its HTTP calls are used
  o.ca_file = g.ca_file;
  return with_relay_client(o, [&](hut::Client* client, int* rc) {
    client->relay_login(relay, username, password, [&, client, rc](hut::Result<hut::RelaySession> s) {
      if (!s.ok()) {
        std::fprintf(stderr, "hut: login refused: %s\n", std::string(s.status().message()).c_str());
        *rc = kNoConnection;
      } else {
        std::string error;
        if (!save_session({relay, s->session, username}, &error)) {
          std::fprintf(stderr, "hut: cannot keep the session: %s\n", error.c_str());
          *rc = kRefused;
        } else {
          std::fprintf(stderr, "Logged in as %s.\n",
                       s->user.name.empty() ? username.c_str() : s->user.name.c_str());
        }
      }
      client->close();
    });
  });
}

int cmd_logout(const Globals& g, const std::vector<std::string>& args) {
  if (!args.empty()) return usage("logout takes no argument");
  SavedSession s;
  if (!load_session(&s)) {
    std::fprintf(stderr, "hut: not logged in\n");
    return kOk;
  }
  hut::ClientOptions o;
  o.space_url = s.relay;
  o.relay_url = s.relay;
  o.relay_session = s.session;
  o.ca_file = g.ca_file;
  // The session file goes whatever the relay answers.
  with_relay_client(o, [](hut::Client* client, int*) {
    client->relay_logout([client](hut::Status st) {
      if (!st.ok())
        std::fprintf(stderr, "hut: the relay did not end the session: %s\n",
                     std::string(st.message()).c_str());
      client->close();
    });
  });
  ::unlink(session_path().c_str());
  return kOk;
}

int cmd_spaces(const Globals& g, const std::vector<std::string>& args) {
  bool json = false;
  for (const auto& a : args) {
    if (a == "--json")
      json = true;
    else
      return usage("spaces: unknown argument " + a);
  }
  SavedSession s;
  bool have = load_session(&s);
  if (!have && g.space.empty()) return usage("spaces: log in first ('hut login RELAY_URL') or give --space");
  hut::ClientOptions o;
  o.space_url = have ? s.relay : g.space;
  if (have) {
    o.relay_url = s.relay;
    o.relay_session = s.session;
  }
  o.ca_file = g.ca_file;
  return with_relay_client(o, [json](hut::Client* client, int* rc) {
    client->relay_spaces([client, rc, json](hut::Result<std::string> dir) {
      if (!dir.ok()) {
        std::fprintf(stderr, "hut: %s\n", std::string(dir.status().message()).c_str());
        *rc = kNoConnection;
      } else if (json) {
        std::printf("%s\n", dir->c_str());
      } else {
        cJSON* j = cJSON_Parse(dir->c_str());
        const cJSON* it = nullptr;
        cJSON_ArrayForEach(it, j) {
          const cJSON* name = cJSON_GetObjectItemCaseSensitive(it, "name");
          const cJSON* url = cJSON_GetObjectItemCaseSensitive(it, "url");
          std::printf("%s\t%s\n", cJSON_IsString(name) ? name->valuestring : "",
                      cJSON_IsString(url) ? url->valuestring : "");
        }
        cJSON_Delete(j);
      }
      client->close();
    });
  });
}

int cmd_post(const Globals& g, const std::vector<std::string>& args) {
  if (args.size() != 2) return usage("post takes two arguments: ROOM TEXT");
  std::string room = args[0], text = args[1];
  return with_connection(g, [room, text](hut::Client* c, Finish finish) {
    // Posting needs membership; joining a room one is in already is harmless.
    c->join(room, [c, room, text, finish](hut::Result<hut::JoinResult> j) {
      if (!j.ok()) return finish(refused(j.status()));
      c->post(room, text, "", [finish](hut::Result<hut::PostResult> p) {
        if (!p.ok()) return finish(refused(p.status()));
        std::printf("%lld\n", static_cast<long long>(p->seq));
        std::fflush(stdout);
        finish(kOk);
      });
    });
  });
}

int cmd_history(const Globals& g, const std::vector<std::string>& args) {
  std::string room;
  int limit = 50;
  bool json = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      json = true;
    } else if (args[i] == "--limit") {
      if (i + 1 >= args.size()) return usage("--limit needs a number");
      char* end = nullptr;
      long n = std::strtol(args[++i].c_str(), &end, 10);
      if (end == nullptr || *end != '\0' || n < 1 || n > 100000) return usage("--limit: a number from 1");
      limit = static_cast<int>(n);
    } else if (room.empty() && args[i].rfind("--", 0) != 0) {
      room = args[i];
    } else {
      return usage("history: unexpected argument " + args[i]);
    }
  }
  if (room.empty()) return usage("history needs a ROOM");
  struct State {
    std::vector<hut::Message> got;
  };
  auto st = std::make_shared<State>();
  std::function<void(hut::Client*, Finish, int64_t)> page;
  auto print_all = [st, json](Finish finish) {
    std::sort(st->got.begin(), st->got.end(),
              [](const hut::Message& a, const hut::Message& b) { return a.seq < b.seq; });
    if (json) {
      std::string out = "[";
      for (size_t i = 0; i < st->got.size(); ++i) out += (i ? "," : "") + message_json(st->got[i]);
      out += "]";
      std::printf("%s\n", out.c_str());
    } else {
      for (const auto& m : st->got) std::printf("%s\n", message_line(m).c_str());
    }
    std::fflush(stdout);
    finish(kOk);
  };
  // Pages of at most 200 back from the newest until `limit` are in.
  auto fetch = std::make_shared<std::function<void(hut::Client*, Finish, int64_t)>>();
  // The function refers to itself weakly: the caller keeps it alive.
  std::weak_ptr<std::function<void(hut::Client*, Finish, int64_t)>> weak_fetch = fetch;
  *fetch = [st, room, limit, print_all, weak_fetch](hut::Client* c, Finish finish, int64_t before) {
    int want = std::min<int>(200, limit - static_cast<int>(st->got.size()));
    c->history(
        room, before, 0, want,
        [st, c, finish, limit, print_all, weak_fetch](hut::Result<hut::HistoryPage> p) {
          if (!p.ok()) return finish(refused(p.status()));
          int64_t oldest = 0;
          for (auto& m : p->messages) {
            if (oldest == 0 || m.seq < oldest) oldest = m.seq;
            st->got.push_back(std::move(m));
          }
          if (p->more && oldest > 1 && static_cast<int>(st->got.size()) < limit && !p->messages.empty())
            if (auto f = weak_fetch.lock()) return (*f)(c, finish, oldest);
          print_all(finish);
        });
  };
  return with_connection(g, [fetch](hut::Client* c, Finish finish) { (*fetch)(c, finish, 0); });
}

int cmd_tail(const Globals& g, const std::vector<std::string>& args) {
  std::string room;
  bool json = false;
  for (const auto& a : args) {
    if (a == "--json")
      json = true;
    else if (room.empty() && a.rfind("--", 0) != 0)
      room = a;
    else
      return usage("tail: unexpected argument " + a);
  }
  if (room.empty()) return usage("tail needs a ROOM");
  return with_connection(
      g,
      [room, json](hut::Client* c, Finish finish) {
        c->on_event([room, json](const hut::Event& e) {
          if (!e.room.empty() && e.room != room) return;
          if (e.room.empty() && e.op != "presence") return;
          std::printf("%s\n", json ? e.json.c_str() : event_line(e).c_str());
          std::fflush(stdout);
        });
        // Events of a room reach its members: join it (a no-op for a member).
        c->join(room, [finish](hut::Result<hut::JoinResult> j) {
          if (!j.ok()) return finish(refused(j.status()));
          std::fprintf(stderr, "hut: following %s\n", j->room.c_str());
        });
      },
      true);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  Globals g;
  g.space = env("HUTOPIA_SPACE");
  g.token = env("HUTOPIA_TOKEN");
  g.ca_file = env("HUTOPIA_CA_FILE");
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* out) -> bool {
      size_t eq = a.find('=');
      if (eq != std::string::npos) {
        *out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    if (!rest.empty()) {
      rest.push_back(a);
    } else if (a == "--help" || a == "-h") {
      std::fputs(kHelp, stdout);
      return kOk;
    } else if (a == "--version") {
      std::printf("hut %s\n", HUT_VERSION_STRING);
      return kOk;
    } else if (a == "--space" || a.rfind("--space=", 0) == 0) {
      if (!value(&g.space)) return usage("--space needs a URL");
    } else if (a == "--token" || a.rfind("--token=", 0) == 0) {
      if (!value(&g.token)) return usage("--token needs a token");
    } else if (a == "--ca-file" || a.rfind("--ca-file=", 0) == 0) {
      if (!value(&g.ca_file)) return usage("--ca-file needs a file");
    } else if (a.rfind("-", 0) == 0) {
      return usage("unknown option " + a);
    } else {
      rest.push_back(a);
    }
  }
  if (rest.empty()) {
    if (::isatty(STDIN_FILENO) != 1 || ::isatty(STDOUT_FILENO) != 1)
      return usage("the interactive client needs a terminal; see --help for the commands");
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::unique_ptr<hut::Client> client;
    int rc = make_client(g, &loop, &client);
    if (rc == kOk) rc = hut::tui::run(&loop, std::move(client));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
  }
  std::string cmd = rest[0];
  std::vector<std::string> args(rest.begin() + 1, rest.end());
  if (cmd == "login") return cmd_login(g, args);
  if (cmd == "logout") return cmd_logout(g, args);
  if (cmd == "spaces") return cmd_spaces(g, args);
  if (cmd == "post") return cmd_post(g, args);
  if (cmd == "history") return cmd_history(g, args);
  if (cmd == "tail") return cmd_tail(g, args);
  return usage("unknown command " + cmd);
}

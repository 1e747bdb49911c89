// The interactive client of `hut` (see tui.h and docs/hut.md).
//
// Screen, top to bottom: a header (space, room, user, connection), the room
// list on the left (unread counts) with the people of the open room under
// it, the timeline on the right, a status line (typing, notices, errors) and
// the composer. Layout is computed in terminal cells with wcwidth, so wide
// characters and emoji take the two columns the terminal gives them.
#include "tui.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <clocale>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <cwchar>
#include <map>
#include <string>
#include <vector>

#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif
#include <curses.h>

namespace hut::tui {
namespace {

constexpr int kHistoryPage = 100;
constexpr int64_t kTypingShowMs = 6000;
constexpr int64_t kTypingSendMs = 3000;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// UTF-8 to UTF-32; a byte that does not start a valid sequence becomes U+FFFD.
std::wstring widen(const std::string& s) {
  std::wstring out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = 0;
    size_t n = 0;
    if (c < 0x80) {
      cp = c;
      n = 1;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      n = 2;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      n = 3;
    } else if ((c & 0xF8) == 0xF0) {
      cp = c & 0x07;
      n = 4;
    }
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) ok = false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if (ok && ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
               (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)))
      ok = false;
    if (!ok) {
      out.push_back(L'\uFFFD');
      ++i;
      continue;
    }
    out.push_back(static_cast<wchar_t>(cp));
    i += n;
  }
  return out;
}

std::string narrow(const std::wstring& w) {
  std::string out;
  for (wchar_t wc : w) {
    auto cp = static_cast<uint32_t>(wc);
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

// Cells a character takes; control and unknown characters are shown as
// U+FFFD (one cell) so that they never move the cursor on the terminal.
int cells(wchar_t& wc) {
  int w = ::wcwidth(wc);
  if (w < 0) {
    wc = L'\uFFFD';
    w = 1;
  }
  return w;
}

int width_of(std::wstring s) {
  int w = 0;
  for (wchar_t& c : s) w += cells(c);
  return w;
}

// `s` cut to at most `max` cells.
std::wstring fit(std::wstring s, int max) {
  std::wstring out;
  int w = 0;
  for (wchar_t c : s) {
    int cw = cells(c);
    if (w + cw > max) break;
    out.push_back(c);
    w += cw;
  }
  return out;
}

std::string clock_of(int64_t ts_ms) { return local_time(ts_ms, "%H:%M"); }

// "10m", "2h", "30s", "1d", "90" (seconds); -1 when not a duration.
int64_t parse_duration(const std::string& s) {
  if (s.empty()) return -1;
  char* end = nullptr;
  long long n = std::strtoll(s.c_str(), &end, 10);
  if (end == s.c_str() || n < 0) return -1;
  std::string unit(end);
  if (unit.empty() || unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  return -1;
}

std::vector<std::string> split_words(const std::string& s, size_t max_parts) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ') ++i;
    if (i >= s.size()) break;
    if (out.size() + 1 == max_parts) {
      out.push_back(s.substr(i));
      break;
    }
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

const char* const kHelpLines[] = {
    "Keys: Enter send, Ctrl-J or Alt-Enter new line, Tab / Shift-Tab next / previous room,",
    "  PageUp / PageDown scroll (PageUp at the top loads older messages), Up on an empty",
    "  composer picks your last messages to edit, Ctrl-L redraw, Ctrl-C quit.",
    "/join ROOM   /leave   /create ROOM [private]   /dm USER   /rooms   /who",
    "/edit [SEQ] TEXT   /delete [SEQ]   (without SEQ: your last message here)",
    "/kick USER   /mute USER [10m|2h|1d]   /unmute USER   /role USER member|moderator|master",
    "/help   /quit",
};

struct Room {
  std::string name;
  std::string dm;  // the other user of a DM room
  std::string role;
  int64_t unread = 0;
  int64_t last_seq = 0;
  bool joined = false;  // join answered: history and members loaded
  bool loading = false;
  bool more_before = true;
  std::map<int64_t, hut::Message> messages;
  std::vector<hut::MemberInfo> members;
  std::map<std::string, std::pair<std::string, int64_t>> typing;  // id -> name, until
  int scroll = 0;                                                 // lines up from the newest
};

struct Cell {
  wchar_t wc;
  attr_t attr;
  short pair;
};
using Line = std::vector<Cell>;

class Ui {
 public:
  Ui(uv_loop_t* loop, std::unique_ptr<hut::Client> client) : loop_(loop), client_(std::move(client)) {}

  int run();

 private:
  // ---- set-up and tear-down ----
  void start_screen();
  void stop_screen();
  void quit(int code);

  // ---- input ----
  void on_input();
  void on_key(wint_t ch, bool is_key);
  void submit();
  void command(const std::string& line);
  void insert(wchar_t wc);

  // ---- rooms ----
  Room& room(const std::string& name);
  void load_rooms();
  void open_room(const std::string& name);
  void load_older(Room& r);
  void mark_read(Room& r);
  void step_room(int delta);
  std::vector<std::string> room_order() const;
  std::string user_id_of(const std::string& who) const;
  std::string name_of(const std::string& id) const;
  void learn(const hut::User& u);
  void on_event(const hut::Event& e);

  // ---- drawing ----
  void draw();
  void draw_header(int w);
  void draw_sidebar(int top, int bottom, int w);
  void draw_timeline(int top, int bottom, int left, int w);
  int draw_composer(int bottom, int w, bool place_cursor);
  std::vector<Line> message_lines(const hut::Message& m, int w, bool selected) const;
  void put(int y, int x, const std::wstring& s, attr_t attr, short pair, int max);
  short name_pair(const std::string& id) const;
  void notice(const std::string& text, bool error = false);
  void fail(const std::string& what, const hut::Status& st);
  void dirty() { dirty_ = true; }
  void resize();

  uv_loop_t* loop_;
  std::unique_ptr<hut::Client> client_;
  uv_poll_t input_{};
  uv_signal_t winch_{}, term_{}, hup_{};
  uv_timer_t tick_{};
  uv_timer_t read_timer_{};
  uv_prepare_t painter_{};
  bool screen_ = false;
  bool handles_ = false;
  bool done_ = false;
  bool dirty_ = true;
  bool color_ = false;
  bool esc_ = false;
  int exit_code_ = 0;

  std::string me_;
  std::string my_name_;
  std::map<std::string, std::string> names_;  // user id -> display name
  int timeline_width_ = 60;
  std::string space_name_;
  std::string state_ = "connecting";
  std::map<std::string, Room> rooms_;
  std::string current_;
  std::wstring composer_;
  size_t cursor_ = 0;
  int64_t last_typing_sent_ = 0;
  int64_t selected_ = 0;  // seq of my message picked with Up
  std::string notice_;
  bool notice_error_ = false;
  int64_t notice_until_ = 0;
  bool help_ = false;
  int timeline_height_ = 10;
};

// ---------------------------------------------------------------- set-up

int Ui::run() {
  client_->on_event([this](const hut::Event& e) { on_event(e); });
  client_->on_state([this](hut::ClientState s, const hut::Status&) {
    switch (s) {
      case hut::ClientState::kConnected:
        state_ = "";
        break;
      case hut::ClientState::kReconnecting:
      case hut::ClientState::kConnecting:
        state_ = "reconnecting";
        break;
      default:
        break;
    }
    dirty();
  });
  std::fprintf(stderr, "hut: connecting...\n");
  client_->connect([this](hut::Result<hut::Welcome> w) {
    if (!w.ok()) {
      std::fprintf(stderr, "hut: cannot connect: %s\n", std::string(w.status().message()).c_str());
      exit_code_ = 3;
      done_ = true;
      client_->close();
      return;
    }
    me_ = w->user.id;
    my_name_ = w->user.name.empty() ? me_ : w->user.name;
    space_name_ = w->space_name.empty() ? w->space_id : w->space_name;
    state_ = "";
    for (const auto& [name, unread] : w->rooms) {
      Room& r = room(name);
      r.unread = unread;
      r.role = r.role.empty() ? "member" : r.role;
    }
    start_screen();
    load_rooms();
  });
  uv_run(loop_, UV_RUN_DEFAULT);
  stop_screen();
  client_.reset();
  uv_run(loop_, UV_RUN_DEFAULT);
  return exit_code_;
}

void Ui::start_screen() {
  std::setlocale(LC_ALL, "");
  if (std::getenv("ESCDELAY") == nullptr) set_escdelay(25);
  initscr();
  screen_ = true;
  raw();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  nodelay(stdscr, TRUE);
  const char* no_color = std::getenv("NO_COLOR");
  color_ = (no_color == nullptr || no_color[0] == '\0') && has_colors();
  if (color_) {
    start_color();
    use_default_colors();
    // 1: header, 2: error, 3..8: names.
    init_pair(1, COLOR_BLACK, COLOR_CYAN);
    init_pair(2, COLOR_RED, -1);
    const short names[] = {COLOR_GREEN, COLOR_YELLOW, COLOR_BLUE, COLOR_MAGENTA, COLOR_CYAN, COLOR_RED};
    for (short i = 0; i < 6; ++i) init_pair(static_cast<short>(3 + i), names[i], -1);
  }
  handles_ = true;
  uv_poll_init(loop_, &input_, STDIN_FILENO);
  input_.data = this;
  uv_poll_start(&input_, UV_READABLE, [](uv_poll_t* h, int status, int) {
    auto* ui = static_cast<Ui*>(h->data);
    if (status < 0) return ui->quit(0);
    ui->on_input();
  });
  uv_signal_init(loop_, &winch_);
  winch_.data = this;
  uv_signal_start(
      &winch_, [](uv_signal_t* h, int) { static_cast<Ui*>(h->data)->resize(); }, SIGWINCH);
  uv_signal_init(loop_, &term_);
  term_.data = this;
  uv_signal_start(
      &term_, [](uv_signal_t* h, int) { static_cast<Ui*>(h->data)->quit(0); }, SIGTERM);
  uv_signal_init(loop_, &hup_);
  hup_.data = this;
  uv_signal_start(
      &hup_, [](uv_signal_t* h, int) { static_cast<Ui*>(h->data)->quit(0); }, SIGHUP);
  uv_timer_init(loop_, &tick_);
  tick_.data = this;
  uv_timer_start(
      &tick_,
      [](uv_timer_t* h) {
        auto* ui = static_cast<Ui*>(h->data);
        int64_t now = now_ms();
        for (auto& [name, r] : ui->rooms_)
          for (auto it = r.typing.begin(); it != r.typing.end();)
            if (it->second.second <= now) {
              it = r.typing.erase(it);
              ui->dirty();
            } else {
              ++it;
            }
        if (ui->notice_until_ != 0 && ui->notice_until_ <= now) {
          ui->notice_.clear();
          ui->notice_until_ = 0;
          ui->dirty();
        }
      },
      1000, 1000);
  uv_timer_init(loop_, &read_timer_);
  read_timer_.data = this;
  uv_prepare_init(loop_, &painter_);
  painter_.data = this;
  uv_prepare_start(&painter_, [](uv_prepare_t* h) {
    auto* ui = static_cast<Ui*>(h->data);
    if (ui->dirty_ && ui->screen_) ui->draw();
  });
  dirty();
}

void Ui::stop_screen() {
  if (!screen_) return;
  screen_ = false;
  endwin();
}

void Ui::quit(int code) {
  if (done_) return;
  done_ = true;
  exit_code_ = code;
  stop_screen();
  if (handles_) {
    uv_close(reinterpret_cast<uv_handle_t*>(&input_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&winch_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&term_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&hup_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&read_timer_), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&painter_), nullptr);
    handles_ = false;
  }
  client_->close();
}

void Ui::resize() {
  if (!screen_) return;
  struct winsize ws {};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
    resizeterm(ws.ws_row, ws.ws_col);
  clearok(curscr, TRUE);
  dirty();
}

// ---------------------------------------------------------------- input

void Ui::on_input() {
  for (int i = 0; i < 4096 && !done_; ++i) {
    wint_t ch = 0;
    int rc = wget_wch(stdscr, &ch);
    if (rc == ERR) break;
    on_key(ch, rc == KEY_CODE_YES);
  }
  dirty();
}

void Ui::insert(wchar_t wc) {
  composer_.insert(cursor_, 1, wc);
  ++cursor_;
}

void Ui::on_key(wint_t ch, bool is_key) {
  Room* r = current_.empty() ? nullptr : &room(current_);
  if (!is_key && esc_) {
    esc_ = false;
    if (ch == L'\r' || ch == L'\n') return insert(L'\n');
    // Alt-<key>: take the key alone.
  }
  if (is_key) {
    switch (ch) {
      case KEY_RESIZE:
        // ncurses took the new size already (resizeterm queues this key).
        clearok(curscr, TRUE);
        return;
      case KEY_LEFT:
        if (cursor_ > 0) --cursor_;
        return;
      case KEY_RIGHT:
        if (cursor_ < composer_.size()) ++cursor_;
        return;
      case KEY_HOME:
        while (cursor_ > 0 && composer_[cursor_ - 1] != L'\n') --cursor_;
        return;
      case KEY_END:
        while (cursor_ < composer_.size() && composer_[cursor_] != L'\n') ++cursor_;
        return;
      case KEY_BACKSPACE:
        if (cursor_ > 0) composer_.erase(--cursor_, 1);
        return;
      case KEY_DC:
        if (cursor_ < composer_.size()) composer_.erase(cursor_, 1);
        return;
      case KEY_ENTER:
        return submit();
      case KEY_BTAB:
        return step_room(-1);
      case KEY_PPAGE:
        if (r) {
          r->scroll += std::max(1, timeline_height_ - 2);
          // The top is clamped when drawing; older pages load there.
        }
        return;
      case KEY_NPAGE:
        if (r) {
          r->scroll = std::max(0, r->scroll - std::max(1, timeline_height_ - 2));
          if (r->scroll == 0) mark_read(*r);
        }
        return;
      case KEY_UP:
      case KEY_DOWN: {
        // On an empty composer (or one holding a picked message): pick one
        // of my messages in this room, newest first, to edit.
        if (!r || (!composer_.empty() && selected_ == 0)) return;
        std::vector<int64_t> mine;
        for (const auto& [seq, m] : r->messages)
          if (m.from.id == me_) mine.push_back(seq);
        if (mine.empty()) return;
        auto it = std::find(mine.begin(), mine.end(), selected_);
        if (ch == KEY_UP) {
          if (selected_ == 0) it = mine.end();
          if (it == mine.begin()) return;
          --it;
        } else {
          if (it == mine.end()) return;
          ++it;
          if (it == mine.end()) {
            selected_ = 0;
            composer_.clear();
            cursor_ = 0;
            return;
          }
        }
        selected_ = *it;
        composer_ = widen("/edit " + std::to_string(selected_) + " " + r->messages[selected_].text);
        cursor_ = composer_.size();
        return;
      }
      default:
        return;
    }
  }
  switch (ch) {
    case 3:  // Ctrl-C
      return quit(0);
    case L'\r':
      return submit();
    case L'\n':  // Ctrl-J
      return insert(L'\n');
    case L'\t':
      return step_room(1);
    case 14:  // Ctrl-N
      return step_room(1);
    case 16:  // Ctrl-P
      return step_room(-1);
    case 1:  // Ctrl-A
      while (cursor_ > 0 && composer_[cursor_ - 1] != L'\n') --cursor_;
      return;
    case 5:  // Ctrl-E
      while (cursor_ < composer_.size() && composer_[cursor_] != L'\n') ++cursor_;
      return;
    case 21:  // Ctrl-U
      composer_.clear();
      cursor_ = 0;
      selected_ = 0;
      return;
    case 12:  // Ctrl-L
      clearok(curscr, TRUE);
      return;
    case 27:
      esc_ = true;
      if (help_) help_ = false;
      return;
    case 8:
    case 127:
      if (cursor_ > 0) composer_.erase(--cursor_, 1);
      return;
    default:
      break;
  }
  if (ch < 32) return;
  insert(static_cast<wchar_t>(ch));
  help_ = false;
  if (r && composer_[0] != L'/' && r->joined) {
    int64_t now = now_ms();
    if (now - last_typing_sent_ >= kTypingSendMs) {
      last_typing_sent_ = now;
      client_->typing(current_, [](hut::Status) {});
    }
  }
}

void Ui::submit() {
  std::string text = narrow(composer_);
  if (text.find_first_not_of(" \n") == std::string::npos) return;
  composer_.clear();
  cursor_ = 0;
  selected_ = 0;
  help_ = false;
  if (text[0] == '/' && text.rfind("//", 0) != 0) return command(text);
  if (text.rfind("//", 0) == 0) text = text.substr(1);
  if (current_.empty()) return notice("no room open: /join ROOM first", true);
  std::string name = current_;
  last_typing_sent_ = 0;
  client_->post(name, text, "", [this](hut::Result<hut::PostResult> p) {
    if (!p.ok()) fail("post", p.status());
  });
  Room& r = room(name);
  r.scroll = 0;
}

std::string Ui::name_of(const std::string& id) const {
  auto it = names_.find(id);
  return it == names_.end() ? id : it->second;
}

void Ui::learn(const hut::User& u) {
  if (!u.id.empty() && !u.name.empty()) names_[u.id] = u.name;
}

std::string Ui::user_id_of(const std::string& who) const {
  std::string w = who;
  if (!w.empty() && w[0] == '@') w = w.substr(1);
  auto it = rooms_.find(current_);
  if (it != rooms_.end()) {
    for (const auto& m : it->second.members)
      if (m.id == w) return w;
    for (const auto& m : it->second.members)
      if (m.name == w) return m.id;
  }
  for (const auto& [id, name] : names_)
    if (name == w) return id;
  return w;
}

// The commands that act on one user of the current room and say so.
struct UserCommand {
  const char* name;
  void (hut::Client::*call)(const std::string& room, const std::string& user_id, hut::Client::StatusCallback);
  const char* outcome;  // after the user's name
};
constexpr UserCommand kUserCommands[] = {
    {"kick", &hut::Client::kick, " was kicked"},
    {"unmute", &hut::Client::unmute, " is no longer muted"},
};
const UserCommand* user_command(const std::string& cmd) {
  for (const UserCommand& uc : kUserCommands)
    if (cmd == uc.name) return &uc;
  return nullptr;
}

void Ui::command(const std::string& line) {
  std::string cmd = line.substr(
      1, line.find_first_of(" \n") == std::string::npos ? std::string::npos : line.find_first_of(" \n") - 1);
  std::string rest = cmd.size() + 1 < line.size() ? line.substr(cmd.size() + 2) : std::string();
  auto args = split_words(rest, 8);
  const std::string room_name = current_;
  auto need_room = [&]() {
    if (room_name.empty()) notice("no room open", true);
    return !room_name.empty();
  };
  auto done = [this](const std::string& what, const std::string& ok) {
    return [this, what, ok](hut::Status st) {
      if (!st.ok()) return fail(what, st);
      if (!ok.empty()) notice(ok);
    };
  };
  if (cmd == "help" || cmd == "?") {
    help_ = true;
  } else if (cmd == "quit" || cmd == "q" || cmd == "exit") {
    quit(0);
  } else if (cmd == "join" || cmd == "j") {
    if (args.size() != 1) return notice("usage: /join ROOM", true);
    std::string name = args[0][0] == '#' ? args[0].substr(1) : args[0];
    open_room(name);
  } else if (cmd == "leave") {
    if (!need_room()) return;
    client_->leave(room_name, [this, room_name](hut::Status st) {
      if (!st.ok()) return fail("leave", st);
      rooms_.erase(room_name);
      if (current_ == room_name) {
        current_.clear();
        auto order = room_order();
        if (!order.empty()) open_room(order[0]);
      }
      notice("left #" + room_name);
    });
  } else if (cmd == "create") {
    if (args.empty() || args.size() > 2) return notice("usage: /create ROOM [private]", true);
    bool priv = args.size() == 2 && args[1] == "private";
    client_->create_room(args[0], priv, "", [this](hut::Result<std::string> r) {
      if (!r.ok()) return fail("create", r.status());
      open_room(*r);
    });
  } else if (cmd == "dm" || cmd == "msg") {
    if (args.empty()) return notice("usage: /dm USER", true);
    std::string id = user_id_of(args[0]);
    client_->dm(id, [this, id](hut::Result<std::string> r) {
      if (!r.ok()) return fail("dm", r.status());
      room(*r).dm = id;
      open_room(*r);
    });
  } else if (cmd == "rooms") {
    client_->rooms([this](hut::Result<std::vector<hut::RoomInfo>> r) {
      if (!r.ok()) return fail("rooms", r.status());
      std::string list;
      for (const auto& i : *r)
        if (i.dm.empty())
          list += (list.empty() ? "" : " ") + std::string("#") + i.room + (i.role.empty() ? "" : "*");
      notice("rooms (* member): " + list);
    });
  } else if (cmd == "who") {
    if (!need_room()) return;
    std::string list;
    for (const auto& m : room(room_name).members)
      list += (list.empty() ? "" : ", ") + m.name + " (" + m.role + (m.online ? ", online" : "") + ")";
    notice("#" + room_name + ": " + list);
  } else if (cmd == "edit") {
    if (!need_room()) return;
    Room& r = room(room_name);
    auto parts = split_words(rest, 2);
    int64_t seq = 0;
    std::string text;
    if (!parts.empty()) {
      char* end = nullptr;
      long long n = std::strtoll(parts[0].c_str(), &end, 10);
      if (end != parts[0].c_str() && *end == '\0' && n > 0) {
        seq = n;
        text = parts.size() > 1 ? parts[1] : "";
      } else {
        text = rest;
      }
    }
    if (seq == 0)
      for (auto it = r.messages.rbegin(); it != r.messages.rend(); ++it)
        if (it->second.from.id == me_) {
          seq = it->first;
          break;
        }
    if (seq == 0) return notice("no message of yours to edit here", true);
    if (text.find_first_not_of(" \n") == std::string::npos) {
      // "/edit" alone: put the message in the composer.
      auto it = r.messages.find(seq);
      if (it == r.messages.end()) return notice("no message #" + std::to_string(seq) + " loaded", true);
      selected_ = seq;
      composer_ = widen("/edit " + std::to_string(seq) + " " + it->second.text);
      cursor_ = composer_.size();
      return;
    }
    client_->edit(room_name, seq, text, done("edit", ""));
  } else if (cmd == "delete" || cmd == "del") {
    if (!need_room()) return;
    Room& r = room(room_name);
    int64_t seq = 0;
    if (!args.empty()) seq = std::strtoll(args[0].c_str(), nullptr, 10);
    if (seq <= 0)
      for (auto it = r.messages.rbegin(); it != r.messages.rend(); ++it)
        if (it->second.from.id == me_) {
          seq = it->first;
          break;
        }
    if (seq <= 0) return notice("no message of yours to delete here", true);
    client_->delete_message(room_name, seq, done("delete", ""));
  } else if (const UserCommand* uc = user_command(cmd)) {
    if (!need_room()) return;
    if (args.size() != 1) return notice(std::string("usage: /") + uc->name + " USER", true);
    (client_.get()->*uc->call)(room_name, user_id_of(args[0]), done(uc->name, args[0] + uc->outcome));
  } else if (cmd == "mute") {
    if (!need_room()) return;
    if (args.empty() || args.size() > 2) return notice("usage: /mute USER [10m|2h|1d]", true);
    int64_t seconds = 0;
    if (args.size() == 2) {
      seconds = parse_duration(args[1]);
      if (seconds < 0) return notice("a duration is like 30s, 10m, 2h or 1d", true);
    }
    std::string who = args[0];
    client_->mute(room_name, user_id_of(who), seconds, [this, who](hut::Result<int64_t> until) {
      if (!until.ok()) return fail("mute", until.status());
      notice(who + " is muted" + (*until ? " until " + clock_of(*until) : std::string()));
    });
  } else if (cmd == "role") {
    if (!need_room()) return;
    if (args.size() != 2) return notice("usage: /role USER member|moderator|master", true);
    client_->set_role(room_name, user_id_of(args[0]), args[1],
                      done("role", args[0] + " is now " + args[1] + " in #" + room_name));
  } else {
    notice("unknown command /" + cmd + " (/help lists them; // starts a message with /)", true);
  }
}

// ---------------------------------------------------------------- rooms

Room& Ui::room(const std::string& name) {
  Room& r = rooms_[name];
  if (r.name.empty()) r.name = name;
  return r;
}

void Ui::load_rooms() {
  client_->rooms([this](hut::Result<std::vector<hut::RoomInfo>> list) {
    if (!list.ok()) return fail("rooms", list.status());
    for (const auto& i : *list) {
      if (i.role.empty()) continue;  // public rooms I am not in
      Room& r = room(i.room);
      r.role = i.role;
      r.unread = i.unread;
      r.last_seq = i.last_seq;
      r.dm = i.dm;
    }
    if (current_.empty()) {
      auto order = room_order();
      if (!order.empty()) open_room(order[0]);
    }
    dirty();
  });
}

std::vector<std::string> Ui::room_order() const {
  std::vector<std::string> rooms, dms;
  for (const auto& [name, r] : rooms_) {
    if (r.role.empty() && name != current_) continue;
    (r.dm.empty() ? rooms : dms).push_back(name);
  }
  rooms.insert(rooms.end(), dms.begin(), dms.end());
  return rooms;
}

void Ui::step_room(int delta) {
  auto order = room_order();
  if (order.empty()) return;
  auto it = std::find(order.begin(), order.end(), current_);
  long i = it == order.end() ? 0 : (it - order.begin());
  long n = static_cast<long>(order.size());
  i = ((i + delta) % n + n) % n;
  open_room(order[static_cast<size_t>(i)]);
}

void Ui::open_room(const std::string& name) {
  current_ = name;
  selected_ = 0;
  Room& r = room(name);
  r.scroll = 0;
  dirty();
  if (r.joined) return mark_read(r);
  client_->join(name, [this, name](hut::Result<hut::JoinResult> j) {
    if (!j.ok()) {
      fail("join #" + name, j.status());
      if (rooms_[name].role.empty() && rooms_[name].messages.empty()) {
        rooms_.erase(name);
        if (current_ == name) current_.clear();
      }
      return;
    }
    Room& r = room(name);
    r.joined = true;
    r.role = j->role.empty() ? "member" : j->role;
    r.last_seq = std::max(r.last_seq, j->last_seq);
    r.members = j->members;
    for (const auto& m : r.members) names_[m.id] = m.name;
    r.more_before = true;
    load_older(r);
  });
}

void Ui::load_older(Room& r) {
  if (r.loading || !r.more_before) return;
  r.loading = true;
  int64_t before = r.messages.empty() ? 0 : r.messages.begin()->first;
  std::string name = r.name;
  client_->history(name, before, 0, kHistoryPage, [this, name, before](hut::Result<hut::HistoryPage> p) {
    auto it = rooms_.find(name);
    if (it == rooms_.end()) return;
    Room& r = it->second;
    r.loading = false;
    if (!p.ok()) return fail("history", p.status());
    for (auto& m : p->messages) {
      learn(m.from);
      r.last_seq = std::max(r.last_seq, m.seq);
      r.messages[m.seq] = std::move(m);
    }
    r.more_before = p->more && !p->messages.empty();
    if (before == 0 && name == current_) mark_read(r);
    dirty();
  });
}

void Ui::mark_read(Room& r) {
  if (r.unread == 0 && r.last_seq == 0) return;
  r.unread = 0;
  dirty();
  // One read call for a burst of messages.
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(&read_timer_))) return;
  uv_timer_start(
      &read_timer_,
      [](uv_timer_t* h) {
        auto* ui = static_cast<Ui*>(h->data);
        auto it = ui->rooms_.find(ui->current_);
        if (it == ui->rooms_.end() || it->second.last_seq == 0) return;
        ui->client_->read(it->first, it->second.last_seq, [](hut::Result<int64_t>) {});
      },
      300, 0);
}

void Ui::on_event(const hut::Event& e) {
  if (done_) return;
  dirty();
  auto who = [](const hut::User& u) { return u.name.empty() ? u.id : u.name; };
  learn(e.user);
  learn(e.by);
  // News of a room not known yet (a new DM): ask for the list again, which
  // tells its kind and my role.
  if (!e.room.empty() && rooms_.count(e.room) == 0 && e.op != "kicked" && e.op != "left" &&
      e.op != "room_removed")
    load_rooms();
  if (e.op == "message") {
    learn(e.message.from);
    Room& r = room(e.room);
    const hut::Message& m = e.message;
    r.last_seq = std::max(r.last_seq, m.seq);
    if (r.role.empty()) r.role = "member";
    r.typing.erase(m.from.id);
    bool seen = r.messages.count(m.seq) != 0;
    if (r.joined || e.room == current_) r.messages[m.seq] = m;
    if (seen || m.from.id == me_) return;
    if (e.room == current_ && r.scroll == 0)
      mark_read(r);
    else
      ++r.unread;
    if (r.scroll > 0 && e.room == current_) {
      // Keep the lines in view where they are.
      r.scroll += static_cast<int>(message_lines(m, timeline_width_, false).size());
    }
  } else if (e.op == "edited") {
    auto it = rooms_.find(e.room);
    if (it == rooms_.end()) return;
    auto m = it->second.messages.find(e.seq);
    if (m == it->second.messages.end()) return;
    m->second.text = e.text;
    m->second.edited_ts = e.edited_ts ? e.edited_ts : now_ms();
  } else if (e.op == "deleted") {
    auto it = rooms_.find(e.room);
    if (it != rooms_.end()) it->second.messages.erase(e.seq);
    if (selected_ == e.seq) selected_ = 0;
  } else if (e.op == "typing") {
    if (e.user.id == me_) return;
    room(e.room).typing[e.user.id] = {who(e.user), now_ms() + kTypingShowMs};
  } else if (e.op == "presence") {
    for (auto& [name, r] : rooms_)
      for (auto& m : r.members)
        if (m.id == e.user.id) m.online = e.online;
  } else if (e.op == "joined") {
    Room& r = room(e.room);
    bool known = false;
    for (auto& m : r.members) known = known || m.id == e.user.id;
    if (!known) r.members.push_back({e.user.id, e.user.name, "member", true, false});
    if (e.user.id != me_ && e.room == current_) notice(who(e.user) + " joined #" + e.room);
  } else if (e.op == "left") {
    auto it = rooms_.find(e.room);
    if (it == rooms_.end()) return;
    auto& ms = it->second.members;
    ms.erase(
        std::remove_if(ms.begin(), ms.end(), [&](const hut::MemberInfo& m) { return m.id == e.user.id; }),
        ms.end());
    if (e.user.id != me_ && e.room == current_) notice(who(e.user) + " left #" + e.room);
  } else if (e.op == "kicked" || e.op == "room_removed") {
    rooms_.erase(e.room);
    notice(e.op == "kicked" ? "you were kicked from #" + e.room + " by " + who(e.by)
                            : "#" + e.room + " was removed",
           true);
    if (current_ == e.room) {
      current_.clear();
      auto order = room_order();
      if (!order.empty()) open_room(order[0]);
    }
  } else if (e.op == "muted" || e.op == "unmuted") {
    auto it = rooms_.find(e.room);
    if (it != rooms_.end())
      for (auto& m : it->second.members)
        if (m.id == e.user.id) m.muted = e.op == "muted";
    std::string subject = e.user.id == me_ ? "you are" : who(e.user) + " is";
    if (e.op == "muted")
      notice(subject + " muted in #" + e.room + (e.until ? " until " + clock_of(e.until) : std::string()));
    else
      notice(subject + " no longer muted in #" + e.room);
  } else if (e.op == "muted_all") {
    notice(std::string("#") + e.room +
           (e.on ? ": everyone below moderator is muted" : ": the room is open again"));
  } else if (e.op == "role") {
    auto it = rooms_.find(e.room);
    if (it != rooms_.end()) {
      if (e.user.id == me_) it->second.role = e.role;
      for (auto& m : it->second.members)
        if (m.id == e.user.id) m.role = e.role;
    }
    notice((e.user.id == me_ ? std::string("you are") : who(e.user) + " is") + " now " + e.role + " in #" +
           e.room);
  } else if (e.op == "read") {
    auto it = rooms_.find(e.room);
    if (it != rooms_.end() && e.seq >= it->second.last_seq) it->second.unread = 0;
  } else if (e.op == "notify") {
    notice(e.title + (e.body.empty() ? "" : ": " + e.body));
  }
}

// ---------------------------------------------------------------- drawing

void Ui::notice(const std::string& text, bool error) {
  notice_ = text;
  notice_error_ = error;
  notice_until_ = now_ms() + 8000;
  dirty();
}

void Ui::fail(const std::string& what, const hut::Status& st) {
  std::string code = hut::wire_code(st);
  std::string msg(st.message());
  notice(what + ": " + msg, true);
  (void)code;
}

short Ui::name_pair(const std::string& id) const {
  if (!color_) return 0;
  uint32_t h = 2166136261u;
  for (char c : id) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  return static_cast<short>(3 + h % 6);
}

void Ui::put(int y, int x, const std::wstring& s, attr_t attr, short pair, int max) {
  std::wstring t = fit(s, max);
  if (t.empty()) return;
  attr_set(attr, pair, nullptr);
  mvaddnwstr(y, x, t.c_str(), static_cast<int>(t.size()));
  attr_set(A_NORMAL, 0, nullptr);
}

std::vector<Line> Ui::message_lines(const hut::Message& m, int w, bool selected) const {
  // "HH:MM name: text (edited)", wrapped under the text column.
  std::vector<Line> lines;
  attr_t base = selected ? A_REVERSE : A_NORMAL;
  Line head;
  auto add = [&](Line& l, const std::wstring& s, attr_t a, short p) {
    for (wchar_t c : s) l.push_back({c, a, p});
  };
  add(head, widen(clock_of(m.ts)) + L" ", base | A_DIM, 0);
  add(head, widen(m.from.name.empty() ? m.from.id : m.from.name), base | A_BOLD, name_pair(m.from.id));
  add(head, L": ", base, 0);
  Line body;
  add(body, widen(m.text), base, 0);
  if (m.edited_ts != 0) add(body, L" (edited)", base | A_DIM, 0);
  const int indent = 6;
  Line cur = head;
  int col = 0;
  for (auto& c : cur) col += cells(c.wc);
  for (Cell c : body) {
    if (c.wc == L'\n') {
      lines.push_back(cur);
      cur = Line(static_cast<size_t>(indent), Cell{L' ', A_NORMAL, 0});
      col = indent;
      continue;
    }
    int cw = cells(c.wc);
    if (cw == 0) {
      // A combining mark stays with the character before it.
      if (!cur.empty()) cur.push_back(c);
      continue;
    }
    if (col + cw > w) {
      lines.push_back(cur);
      cur = Line(static_cast<size_t>(indent), Cell{L' ', A_NORMAL, 0});
      col = indent;
    }
    cur.push_back(c);
    col += cw;
  }
  lines.push_back(cur);
  return lines;
}

void Ui::draw_header(int w) {
  std::string left = " " + (space_name_.empty() ? std::string("hut") : space_name_);
  if (!current_.empty()) {
    const Room& r = rooms_.at(current_);
    left += r.dm.empty() ? "  #" + current_ : "  @" + name_of(r.dm);
    if (r.role != "member" && !r.role.empty()) left += " (" + r.role + ")";
  }
  std::string right = (state_.empty() ? std::string() : "[" + state_ + "] ") + my_name_ + "  /help ";
  std::wstring l = widen(left), rr = widen(right);
  int pad = w - width_of(l) - width_of(rr);
  std::wstring line = l + std::wstring(static_cast<size_t>(std::max(1, pad)), L' ') + rr;
  put(0, 0, line, color_ ? A_NORMAL : A_REVERSE, color_ ? 1 : 0, w);
  if (width_of(line) < w) {
    attr_set(color_ ? A_NORMAL : A_REVERSE, color_ ? 1 : 0, nullptr);
    for (int x = width_of(line); x < w; ++x) mvaddch(0, x, ' ');
    attr_set(A_NORMAL, 0, nullptr);
  }
}

void Ui::draw_sidebar(int top, int bottom, int w) {
  int y = top;
  for (const auto& name : room_order()) {
    if (y >= bottom) break;
    const Room& r = rooms_.at(name);
    std::wstring label = widen(r.dm.empty() ? "#" + name : "@" + name_of(r.dm));
    std::wstring count = r.unread > 0 ? widen(" " + std::to_string(r.unread)) : L"";
    int room_w = w - 1 - width_of(count);
    attr_t a = name == current_ ? A_REVERSE : (r.unread > 0 ? A_BOLD : A_NORMAL);
    std::wstring shown = fit(label, room_w);
    shown += std::wstring(static_cast<size_t>(std::max(0, room_w - width_of(shown))), L' ');
    put(y, 0, shown + count, a, 0, w - 1);
    ++y;
  }
  if (current_.empty() || y + 2 >= bottom) return;
  const Room& r = rooms_.at(current_);
  ++y;
  put(y++, 0, L"People", A_DIM, 0, w - 1);
  std::vector<hut::MemberInfo> ms = r.members;
  std::stable_sort(ms.begin(), ms.end(),
                   [](const hut::MemberInfo& a, const hut::MemberInfo& b) { return a.online > b.online; });
  for (const auto& m : ms) {
    if (y >= bottom) break;
    std::wstring mark = m.online ? L"\u25CF " : L"\u25CB ";
    std::string tag = m.role == "master" ? "@" : m.role == "moderator" ? "%" : "";
    put(y++, 0, mark + widen(tag + (m.name.empty() ? m.id : m.name)), m.online ? A_NORMAL : A_DIM,
        m.online ? name_pair(m.id) : 0, w - 1);
  }
}

void Ui::draw_timeline(int top, int bottom, int left, int w) {
  int height = bottom - top;
  timeline_height_ = height;
  timeline_width_ = w;
  if (current_.empty()) {
    put(top, left, L"No room open. /join ROOM, or /help.", A_NORMAL, 0, w);
    return;
  }
  Room& r = rooms_.at(current_);
  // Lines from the newest up, until the scroll offset plus a screen is filled.
  std::vector<Line> lines;  // newest first
  int need = r.scroll + height;
  auto it = r.messages.rbegin();
  for (; it != r.messages.rend() && static_cast<int>(lines.size()) < need; ++it) {
    auto ls = message_lines(it->second, w, it->first == selected_);
    for (auto l = ls.rbegin(); l != ls.rend(); ++l) lines.push_back(*l);
  }
  if (it == r.messages.rend() && !r.more_before && !r.messages.empty()) {
    Line mark;
    for (wchar_t c : L"-- the beginning of #" + widen(current_) + L" --") mark.push_back({c, A_DIM, 0});
    lines.push_back(mark);
  }
  int total = static_cast<int>(lines.size());
  if (total < need) {
    // The top of what is loaded is in view: load the page before it.
    if (r.more_before && r.joined) load_older(r);
    r.scroll = std::max(0, std::min(r.scroll, total - height));
  }
  if (r.messages.empty() && !r.loading) put(top, left, L"(no messages yet)", A_DIM, 0, w);
  for (int i = 0; i < height; ++i) {
    int idx = r.scroll + i;
    if (idx >= total) break;
    int y = bottom - 1 - i;
    int x = left;
    for (const Cell& c : lines[static_cast<size_t>(idx)]) {
      wchar_t wc = c.wc;
      int cw = cells(wc);
      if (x + cw > left + w) break;
      cchar_t cc;
      wchar_t s[2] = {wc, 0};
      setcchar(&cc, s, c.attr, c.pair, nullptr);
      mvadd_wch(y, x, &cc);
      x += cw;
    }
  }
  if (r.scroll > 0) {
    std::wstring more = L" \u2193 " + widen(std::to_string(r.scroll)) + L" lines below ";
    put(bottom - 1, left + w - width_of(more), more, A_REVERSE, 0, width_of(more));
  }
}

int Ui::draw_composer(int bottom, int w, bool place_cursor) {
  // The prompt, then the text; '\n' starts a line; long lines wrap.
  struct Pos {
    int row, col;
  };
  std::wstring prompt = current_.empty() ? L"> " : L"> ";
  int col = width_of(prompt);
  int row = 0;
  std::vector<std::vector<wchar_t>> rows(1);
  std::vector<Pos> pos;
  for (wchar_t c : prompt) rows[0].push_back(c);
  for (size_t i = 0; i <= composer_.size(); ++i) {
    if (i == composer_.size()) {
      if (col >= w) {
        rows.emplace_back();
        ++row;
        col = 0;
      }
      pos.push_back({row, col});
      break;
    }
    wchar_t c = composer_[i];
    if (c == L'\n') {
      pos.push_back({row, col});
      rows.emplace_back(std::vector<wchar_t>{L' ', L' '});
      ++row;
      col = 2;
      continue;
    }
    int cw = cells(c);
    if (col + cw > w) {
      rows.emplace_back();
      ++row;
      col = 0;
    }
    pos.push_back({row, col});
    rows.back().push_back(c);
    col += cw;
  }
  int shown = std::min<int>(static_cast<int>(rows.size()), 5);
  Pos cur = pos[std::min(cursor_, pos.size() - 1)];
  int first = std::max(0, std::min(cur.row - shown + 1, static_cast<int>(rows.size()) - shown));
  if (cur.row < first) first = cur.row;
  int top = bottom - shown;
  if (!place_cursor) return shown;
  for (int i = 0; i < shown; ++i) {
    const auto& rw = rows[static_cast<size_t>(first + i)];
    std::wstring s(rw.begin(), rw.end());
    put(top + i, 0, s, A_NORMAL, 0, w);
  }
  move(top + cur.row - first, std::min(cur.col, w - 1));
  return shown;
}

void Ui::draw() {
  dirty_ = false;
  int h = LINES, w = COLS;
  erase();
  if (h < 6 || w < 20) {
    put(0, 0, L"hut: the terminal is too small", A_NORMAL, 0, w);
    refresh();
    return;
  }
  draw_header(w);
  int composer_h = draw_composer(h, w, false);
  int status_y = h - composer_h - 1;
  int side = w >= 60 ? std::min(22, w / 4) : 0;
  if (help_) {
    int y = 1;
    for (const char* l : kHelpLines) {
      if (y >= status_y) break;
      put(y++, 0, widen(l), A_NORMAL, 0, w);
    }
  } else {
    if (side > 0) {
      draw_sidebar(1, status_y, side);
      for (int y = 1; y < status_y; ++y) mvaddch(y, side - 1, ACS_VLINE);
    }
    draw_timeline(1, status_y, side, w - side);
  }
  // Status line: who is typing in the open room, then the latest notice.
  std::wstring status;
  attr_t sa = A_NORMAL;
  short sp = 0;
  if (!current_.empty()) {
    std::vector<std::string> names;
    for (const auto& [id, t] : rooms_.at(current_).typing) names.push_back(t.first);
    if (names.size() == 1) status = widen(names[0] + " is typing...");
    if (names.size() == 2) status = widen(names[0] + " and " + names[1] + " are typing...");
    if (names.size() > 2) status = L"several people are typing...";
  }
  if (!notice_.empty()) {
    if (!status.empty()) status += L"  |  ";
    status += widen(notice_);
    sa = notice_error_ ? A_BOLD : A_NORMAL;
    sp = notice_error_ && color_ ? 2 : 0;
  }
  put(status_y, 0, status, sa, sp, w);
  curs_set(1);
  draw_composer(h, w, true);
  refresh();
}

}  // namespace

std::string local_time(int64_t ts_ms, const char* format) {
  std::time_t t = static_cast<std::time_t>(ts_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  if (std::strftime(buf, sizeof buf, format, &tm) == 0) return std::string();
  return buf;
}

int run(uv_loop_t* loop, std::unique_ptr<hut::Client> client) {
  Ui ui(loop, std::move(client));
  return ui.run();
}

}  // namespace hut::tui

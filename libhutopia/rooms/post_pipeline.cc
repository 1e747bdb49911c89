// The one post pipeline: every post and edit, from the bus, the management
// API and plugins, is checked, filtered, stored and announced here
// (Rooms::submit). The routes only parse their input into a Submission and
// turn the Outcome into their own answer.
#include <algorithm>

#include "rooms/rooms.h"
#include "util/log.h"

namespace hut::rooms {
namespace {

using bus::ErrorCode;
using bus::json_string;

// Bytes of a post's data as compact JSON, so that no reply built from it
// nears the backpressure limit.
constexpr size_t kMaxData = 16384;

ErrorCode code_of(const Status& st) { return wire_error_of(st); }

Rooms::Outcome refusal(ErrorCode code, std::string message) {
  Rooms::Outcome o;
  o.code = code;
  o.message = std::move(message);
  return o;
}

}  // namespace

void Rooms::submit(Submission s, std::function<void(const Outcome&)> done) {
  const char* what = s.edit ? "an edit" : "a post";
  // A post from inside a post filter could start an endless chain of posts.
  if (filtering_ > 0) return done(refusal(ErrorCode::kUnavailable, "no post while the post filters run"));
  Room* r = find_room(s.room);
  if (r == nullptr && shared_store() && !s.room_loaded) {
    s.room_loaded = true;
    std::string room = s.room;
    load_room(room, [this, s = std::move(s), done = std::move(done)]() mutable {
      submit(std::move(s), std::move(done));
    });
    return;
  }
  if (r == nullptr) return done(refusal(ErrorCode::kNotFound, "no room named " + s.room));
  const MemberRecord* m = member(*r, s.from.id);
  if (m == nullptr && s.members_only)
    return done(refusal(ErrorCode::kForbidden, "you are not a member of this room"));
  if (s.text.size() > options_.max_text)
    return done(refusal(ErrorCode::kTooLarge, std::string(what) + " holds at most " +
                                                  std::to_string(options_.max_text) + " bytes of text"));
  if (s.edit && !s.data_json.empty())
    return done(refusal(ErrorCode::kBadRequest, "an edit replaces the text only"));
  if (!s.data_json.empty() && !bus::is_json(s.data_json))
    return done(refusal(ErrorCode::kBadRequest, "a post's data must be JSON"));
  if (s.data_json.size() > kMaxData)
    return done(refusal(ErrorCode::kTooLarge,
                        "a post's data holds at most " + std::to_string(kMaxData) + " bytes of JSON"));
  // A mute binds the member on every route that acts as them.
  if (m != nullptr && is_muted(*r, *m))
    return done(refusal(ErrorCode::kMuted, s.session.empty() ? s.from.id + " is muted in this room"
                                                             : "you are muted in this room"));
  if (!s.session.empty() && !take_post_token(s.session))
    return done(refusal(ErrorCode::kRateLimited, "too many posts; slow down"));
  if (plugins_ != nullptr) {
    // An edit's text passes the filters as a post's does; whatever a filter
    // makes of the data of an edit is dropped.
    std::string no_data;
    ++filtering_;
    Status st = plugins_->filter_post(s.room, UserRef{s.from.id, s.from.name, s.from.avatar}, &s.text,
                                      s.edit ? &no_data : &s.data_json, s.plugin);
    --filtering_;
    if (st.ok() && s.text.size() > options_.max_text)
      st = Status::resource_exhausted("the post is over " + std::to_string(options_.max_text) +
                                      " bytes after a plugin rewrote it");
    if (!st.ok()) {
      if (!s.plugin.empty())
        log_write(
            LogLevel::kInfo, "rooms",
            "a post of plugin " + s.plugin + " in " + s.room + " was refused: " + std::string(st.message()));
      return done(refusal(code_of(st), std::string(st.message())));
    }
  }
  if (s.edit)
    store_edit(std::move(s), std::move(done));
  else
    store_post(std::move(s), std::move(done));
}

bool Rooms::take_post_token(const std::string& session) {
  bus::Session* s = bus_->welcomed_session(session);
  if (s == nullptr) return true;
  bus::RoomSessionState& st = s->rooms;
  uint64_t now = now_ms();
  st.post_tokens =
      std::min(options_.post_burst,
               st.post_tokens + static_cast<double>(now - st.post_refill_ms) * options_.post_rate / 1000.0);
  st.post_refill_ms = now;
  if (st.post_tokens < 1) return false;
  st.post_tokens -= 1;
  return true;
}

void Rooms::store_post(Submission s, std::function<void(const Outcome&)> done) {
  PostRequest req;
  req.room = s.room;
  req.from = s.from;
  req.text = s.text;
  req.data_json = s.data_json;
  MessageRecord msg;
  msg.room = std::move(s.room);
  msg.from = std::move(s.from);
  msg.text = std::move(s.text);
  msg.data_json = std::move(s.data_json);
  store_->post(std::move(req),
               [this, msg = std::move(msg), done = std::move(done)](Result<PostResult> res) mutable {
                 if (!res.ok())
                   return done(refusal(code_of(res.status()), std::string(res.status().message())));
                 msg.seq = res->seq;
                 msg.ts = res->ts;
                 Room* r = find_room(msg.room);
                 if (r != nullptr) {
                   r->rec.last_seq = std::max(r->rec.last_seq, msg.seq);
                   // A post counts as read by its author when they are a member.
                   if (member(*r, msg.from.id) != nullptr) raise_marker(msg.room, msg.from.id, msg.seq);
                 }
                 Outcome o;
                 o.ok = true;
                 o.seq = msg.seq;
                 o.ts = msg.ts;
                 done(o);
                 if (r == nullptr || find_room(msg.room) == nullptr) return;
                 to_room(msg.room, message_json(msg, "message"));
               });
}

void Rooms::store_edit(Submission s, std::function<void(const Outcome&)> done) {
  std::string room = s.room;
  uint64_t seq = s.seq;
  std::string text = s.text;
  store_->edit(std::move(s.room), s.seq, std::move(s.text), 0, std::move(s.from.id),
               [this, room, seq, text, done = std::move(done)](Result<int64_t> res) {
                 if (!res.ok()) {
                   if (res.status().code() == Status::Code::kPermissionDenied)
                     return done(refusal(ErrorCode::kForbidden, "only the author may edit a message"));
                   return done(refusal(code_of(res.status()), std::string(res.status().message())));
                 }
                 Outcome o;
                 o.ok = true;
                 o.seq = seq;
                 o.ts = *res;
                 done(o);
                 if (find_room(room) == nullptr) return;
                 to_room(room, R"({"op":"edited","room":)" + json_string(room) + R"(,"seq":)" +
                                   std::to_string(seq) + R"(,"text":)" + json_string(text) +
                                   R"(,"edited_ts":)" + std::to_string(*res) + '}');
               });
}

}  // namespace hut::rooms

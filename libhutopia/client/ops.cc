// The ops of hut::Client: one request frame each, made from a list of its
// fields, and its answer read into the public types (client.h).
#include <hutopia/client.h>

#include <algorithm>
#include <initializer_list>
#include <variant>

#include "client/connection.h"

namespace hut {

using client::array_of;
using client::boolean;
using client::Json;
using client::json_field;
using client::message_of;
using client::num;
using client::print;
using client::str;

namespace {

// A field of a request frame; left out when `sent` is false.
struct Arg {
  const char* name;
  std::variant<std::string, int64_t, bool> value;
  bool sent = true;
};

Json fields_of(std::initializer_list<Arg> args) {
  Json f(cJSON_CreateObject());
  for (const Arg& a : args) {
    if (!a.sent) continue;
    if (const auto* s = std::get_if<std::string>(&a.value))
      cJSON_AddStringToObject(f.get(), a.name, s->c_str());
    else if (const auto* n = std::get_if<int64_t>(&a.value))
      cJSON_AddNumberToObject(f.get(), a.name, static_cast<double>(*n));
    else
      cJSON_AddBoolToObject(f.get(), a.name, std::get<bool>(a.value));
  }
  return f;
}

// A reply that hands `done` what `read` takes from the answer (or the error).
template <class T, class Read>
Client::Impl::Reply reply_with(Client::Callback<T> done, Read read) {
  return [done = std::move(done), read](Status st, const cJSON* j) {
    if (!st.ok()) return done(st);
    done(read(j));
  };
}

Client::Impl::Reply status_reply(Client::StatusCallback done) {
  return [done = std::move(done)](Status st, const cJSON*) { done(st); };
}

// The answer's string `name`, number `name`.
auto string_field(const char* name) {
  return [name](const cJSON* j) { return str(j, name); };
}
auto number_field(const char* name) {
  return [name](const cJSON* j) { return num(j, name); };
}

// Sends op `op` with the fields `args`.
void send(Client::Impl& impl, const char* op, std::initializer_list<Arg> args, Client::Impl::Reply reply) {
  impl.send_request(op, fields_of(args).get(), std::move(reply));
}

}  // namespace

void Client::ping(StatusCallback done) { send(*impl_, "ping", {}, status_reply(std::move(done))); }

void Client::widget(const std::string& plugin, const std::string& data_json, Callback<std::string> done) {
  Json data(cJSON_Parse(data_json.empty() ? "null" : data_json.c_str()));
  if (!data) return done(Status::invalid_argument("the widget data is not JSON"));
  Json f = fields_of({{"plugin", plugin}});
  cJSON_AddItemToObject(f.get(), "data", data.release());
  impl_->send_request("widget", f.get(), reply_with(std::move(done), [](const cJSON* j) {
                        std::string d = json_field(j, "data");
                        return d.empty() ? std::string("null") : d;
                      }));
}

void Client::rooms(Callback<std::vector<RoomInfo>> done) {
  send(*impl_, "rooms", {}, reply_with(std::move(done), [](const cJSON* j) {
    return array_of<RoomInfo>(j, "rooms", client::room_of);
  }));
}

void Client::create_room(const std::string& room, bool is_private, const std::string& topic,
                         Callback<std::string> done) {
  send(*impl_, "create", {{"room", room}, {"private", is_private}, {"topic", topic, !topic.empty()}},
       reply_with(std::move(done), string_field("room")));
}

void Client::join(const std::string& room, Callback<JoinResult> done) {
  Impl* impl = impl_.get();
  send(*impl, "join", {{"room", room}}, reply_with(std::move(done), [impl](const cJSON* j) {
    JoinResult r = client::join_result_of(j);
    if (impl->last_seen.count(r.room) == 0) impl->last_seen[r.room] = r.last_seq;
    return r;
  }));
}

void Client::leave(const std::string& room, StatusCallback done) {
  send(*impl_, "leave", {{"room", room}}, status_reply(std::move(done)));
}

void Client::post(const std::string& room, const std::string& text, const std::string& data_json,
                  Callback<PostResult> done) {
  Json f = fields_of({{"room", room}, {"text", text}});
  if (!data_json.empty()) {
    Json data(cJSON_Parse(data_json.c_str()));
    if (!data) return done(Status::invalid_argument("the message data is not JSON"));
    cJSON_AddItemToObject(f.get(), "data", data.release());
  }
  impl_->send_request("post", f.get(), reply_with(std::move(done), [](const cJSON* j) {
                        return PostResult{num(j, "seq"), num(j, "ts")};
                      }));
}

void Client::edit(const std::string& room, int64_t seq, const std::string& text, StatusCallback done) {
  send(*impl_, "edit", {{"room", room}, {"seq", seq}, {"text", text}}, status_reply(std::move(done)));
}

void Client::delete_message(const std::string& room, int64_t seq, StatusCallback done) {
  send(*impl_, "delete", {{"room", room}, {"seq", seq}}, status_reply(std::move(done)));
}

void Client::history(const std::string& room, int64_t before, int64_t after, int limit,
                     Callback<HistoryPage> done) {
  Impl* impl = impl_.get();
  send(*impl, "history",
       {{"room", room},
        {"before", before, before > 0},
        {"after", after, after > 0},
        {"limit", static_cast<int64_t>(limit), limit > 0}},
       reply_with(std::move(done), [impl, room, before](const cJSON* j) {
         HistoryPage page;
         page.messages = array_of<Message>(j, "messages", message_of);
         page.more = boolean(j, "more");
         if (before == 0 && impl->held.count(room) == 0) {
           int64_t& seen = impl->last_seen[room];
           for (const Message& m : page.messages) seen = std::max(seen, m.seq);
         }
         return page;
       }));
}

void Client::read(const std::string& room, int64_t seq, Callback<int64_t> done) {
  send(*impl_, "read", {{"room", room}, {"seq", seq}}, reply_with(std::move(done), number_field("unread")));
}

void Client::typing(const std::string& room, StatusCallback done) {
  send(*impl_, "typing", {{"room", room}}, status_reply(std::move(done)));
}

void Client::members(const std::string& room, const std::string& after, int limit,
                     Callback<MembersPage> done) {
  send(*impl_, "members",
       {{"room", room}, {"after", after, !after.empty()}, {"limit", static_cast<int64_t>(limit), limit > 0}},
       reply_with(std::move(done), [](const cJSON* j) {
         return MembersPage{array_of<MemberInfo>(j, "members", client::member_of), boolean(j, "more")};
       }));
}

void Client::dm(const std::string& user_id, Callback<std::string> done) {
  send(*impl_, "dm", {{"user", user_id}}, reply_with(std::move(done), string_field("room")));
}

void Client::kick(const std::string& room, const std::string& user_id, StatusCallback done) {
  send(*impl_, "kick", {{"room", room}, {"user", user_id}}, status_reply(std::move(done)));
}

void Client::mute(const std::string& room, const std::string& user_id, int64_t seconds,
                  Callback<int64_t> done) {
  send(*impl_, "mute", {{"room", room}, {"user", user_id}, {"seconds", seconds, seconds > 0}},
       reply_with(std::move(done), number_field("until")));
}

void Client::unmute(const std::string& room, const std::string& user_id, StatusCallback done) {
  send(*impl_, "unmute", {{"room", room}, {"user", user_id}}, status_reply(std::move(done)));
}

void Client::mute_all(const std::string& room, bool on, StatusCallback done) {
  send(*impl_, "mute_all", {{"room", room}, {"on", on}}, status_reply(std::move(done)));
}

void Client::set_role(const std::string& room, const std::string& user_id, const std::string& role,
                      StatusCallback done) {
  send(*impl_, "role", {{"room", room}, {"user", user_id}, {"role", role}}, status_reply(std::move(done)));
}

void Client::request(const std::string& op, const std::string& fields_json, Callback<std::string> done) {
  Json f(cJSON_Parse(fields_json.empty() ? "{}" : fields_json.c_str()));
  if (!cJSON_IsObject(f.get())) return done(Status::invalid_argument("the fields are not a JSON object"));
  std::string op_copy = op;
  impl_->send_request(op_copy.c_str(), f.get(),
                      reply_with(std::move(done), [](const cJSON* j) { return print(j); }));
}

}  // namespace hut

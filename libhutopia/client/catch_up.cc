// The catch-up of rooms after a reconnect: the messages missed while away,
// fetched with `history after` (or paged back with `before` from a space
// without it), delivered in order and once, with the live messages that
// came meanwhile held until the fetched ones are out.
#include <algorithm>

#include "client/connection.h"

namespace hut {

using client::array_of;
using client::boolean;
using client::Json;
using client::message_frame;
using client::message_of;

// After a reconnect: the messages of `room` after the last one seen.
void Client::Impl::catch_up(const std::string& room) {
  if (held.count(room) != 0) return;
  held[room];
  if (space_has_after)
    catch_up_after(room, last_seen[room], 0);
  else
    catch_up_before(room, 0, {}, 0);
}

void Client::Impl::catch_up_after(const std::string& room, int64_t after, int pages) {
  Json f(cJSON_CreateObject());
  cJSON_AddStringToObject(f.get(), "room", room.c_str());
  cJSON_AddNumberToObject(f.get(), "after", static_cast<double>(after));
  cJSON_AddNumberToObject(f.get(), "limit", 200);
  send_request("history", f.get(), [this, room, pages](Status st, const cJSON* j) {
    if (!st.ok()) return end_catch_up(room, {});
    std::vector<Message> msgs = array_of<Message>(j, "messages", message_of);
    int64_t top = last_seen[room];
    for (const Message& m : msgs) top = std::max(top, m.seq);
    replay(room, msgs);
    if (boolean(j, "more") && !msgs.empty() && pages < 1000)
      catch_up_after(room, top, pages + 1);
    else
      end_catch_up(room, {});
  });
}

// For a space without `history after`: pages back from the newest until
// the last seen message.
void Client::Impl::catch_up_before(const std::string& room, int64_t before, std::vector<Message> got,
                                   int pages) {
  Json f(cJSON_CreateObject());
  cJSON_AddStringToObject(f.get(), "room", room.c_str());
  if (before > 0) cJSON_AddNumberToObject(f.get(), "before", static_cast<double>(before));
  cJSON_AddNumberToObject(f.get(), "limit", 200);
  send_request("history", f.get(),
               [this, room, got = std::move(got), pages](Status st, const cJSON* j) mutable {
                 if (!st.ok()) return end_catch_up(room, std::move(got));
                 const cJSON* arr = cJSON_GetObjectItemCaseSensitive(j, "messages");
                 const cJSON* it = nullptr;
                 int64_t oldest = 0;
                 if (cJSON_IsArray(arr)) {
                   cJSON_ArrayForEach(it, arr) {
                     Message m = message_of(it);
                     if (oldest == 0 || m.seq < oldest) oldest = m.seq;
                     got.push_back(std::move(m));
                   }
                 }
                 int64_t seen = last_seen[room];
                 if (boolean(j, "more") && oldest > seen + 1 && pages < 1000)
                   catch_up_before(room, oldest, std::move(got), pages + 1);
                 else
                   end_catch_up(room, std::move(got));
               });
}

void Client::Impl::replay(const std::string& room, std::vector<Message> msgs) {
  std::sort(msgs.begin(), msgs.end(), [](const Message& a, const Message& b) { return a.seq < b.seq; });
  for (Message& m : msgs) {
    int64_t& seen = last_seen[room];
    if (m.seq <= seen) continue;
    seen = m.seq;
    Event e;
    e.op = "message";
    e.room = room;
    e.seq = m.seq;
    e.text = m.text;
    e.replayed = true;
    e.json = message_frame(room, m);
    e.message = std::move(m);
    deliver(e);
  }
}

void Client::Impl::end_catch_up(const std::string& room, std::vector<Message> msgs) {
  replay(room, std::move(msgs));
  auto h = held.find(room);
  if (h == held.end()) return;
  std::vector<Event> live = std::move(h->second);
  held.erase(h);
  for (Event& e : live) {
    int64_t& seen = last_seen[room];
    if (e.seq <= seen) continue;
    seen = e.seq;
    deliver(e);
  }
}

}  // namespace hut

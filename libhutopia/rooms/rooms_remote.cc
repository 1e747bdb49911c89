// Room events published by the other nodes of a cluster (docs/cluster.md):
// the room's record and the member the event names (every member, for a room
// this node did not have) are read again from the shared store, then the frame
// reaches this node's sessions. Events of one room are handled one at a time
// in the order Redis handed them over, so a room's refresh never overtakes
// the delivery of an earlier event.
#include <algorithm>
#include <set>

#include "rooms/rooms.h"
#include "rooms/rooms_internal.h"
#include "util/json.h"

namespace hut::rooms {
namespace {

// The events that leave the room's record and members as they were.
bool keeps_state(std::string_view op) { return op == "message" || op == "edited" || op == "deleted"; }

}  // namespace

void Rooms::remote_room_event(std::string room, std::string frame) {
  std::deque<std::string>& q = remote_[room];
  q.push_back(std::move(frame));
  if (q.size() == 1) next_remote(room);
}

void Rooms::remote_user_event(const std::string& user, const std::string& frame) {
  // Only `read` frames are parsed; they name the marker as the other node
  // committed it.
  if (frame.find(R"("op":"read")") != std::string::npos) {
    JsonPtr root(cJSON_Parse(frame.c_str()));
    const char* op = root ? get_string(root.get(), "op") : nullptr;
    const char* room = root ? get_string(root.get(), "room") : nullptr;
    const cJSON* seq = root ? get_field(root.get(), "seq") : nullptr;
    if (op != nullptr && std::string_view(op) == "read" && room != nullptr && cJSON_IsNumber(seq) &&
        seq->valuedouble >= 0) {
      raise_marker(room, user, static_cast<uint64_t>(seq->valuedouble));
    }
  }
  bus_->send_event(EventTarget::kUser, user, frame);
}

void Rooms::resync_rooms() {
  // An empty frame in a room's queue stands for the re-read, so that the
  // events that came after it are handled after it.
  std::vector<std::string> ids;
  for (const auto& [id, r] : rooms_) ids.push_back(id);
  for (std::string& id : ids) remote_room_event(std::move(id), std::string());
  load_missing_rooms(true, [] {});
}

void Rooms::resync_room(const std::string& room, int tries, std::function<void()> done) {
  Room* r0 = find_room(room);
  if (r0 == nullptr) return done();
  uint64_t changes = r0->local_member_changes;
  refresh_room(room, [this, room, tries, changes, done] {
    if (find_room(room) == nullptr) return done();  // removed on another node
    store_->members(room, [this, room, tries, changes, done](Result<std::vector<MemberRecord>> ms) {
      Room* r = find_room(room);
      if (!ms.ok() || r == nullptr) return done();
      auto rest = [this, room, done] {
        refresh_sanctions(room, [this, room, done] { refresh_markers(room, done); });
      };
      if (r->local_member_changes != changes) {
        if (tries > 1) return resync_room(room, tries - 1, done);
        return rest();
      }
      r->members.clear();
      for (MemberRecord& m : *ms) take_member(*r, room, std::move(m));
      rest();
    });
  });
}

void Rooms::refresh_markers(const std::string& room, std::function<void()> done) {
  store_->read_markers(room, [this, room, done](Result<std::vector<ReadMarker>> mks) {
    // Unreadable now: the markers move again at the user's next read or post.
    if (mks.ok() && find_room(room) != nullptr) {
      for (const ReadMarker& mk : *mks) raise_marker(room, mk.user, mk.seq);
    }
    done();
  });
}

void Rooms::take_member(Room& r, const std::string& room, MemberRecord m) {
  std::string id = m.user.id;
  watch_mute(room, id, m.mute_until);
  users_[id] = m.user;
  r.members[id] = std::move(m);
}

void Rooms::refresh_room(const std::string& room, std::function<void()> done) {
  store_->get_room(room, [this, room, done](Result<RoomRecord> rec) {
    if (!rec.ok()) {
      // Removed on the other node (or unreadable now: the next event reads it again).
      if (rec.status().is_not_found()) rooms_.erase(room);
      done();
      return;
    }
    rooms_[room].rec = std::move(*rec);
    done();
  });
}

void Rooms::load_room(const std::string& room, std::function<void()> done) {
  refresh_room(room, [this, room, done] {
    if (find_room(room) == nullptr) return done();
    store_->members(room, [this, room, done](Result<std::vector<MemberRecord>> ms) {
      Room* r = find_room(room);
      if (ms.ok() && r != nullptr) {
        for (MemberRecord& m : *ms) take_member(*r, room, std::move(m));
      }
      done();
    });
  });
}

void Rooms::refresh_sanctions(const std::string& room, std::function<void()> done) {
  if (!shared_store()) return done();
  store_->sanctions(room, [this, room, done](Result<std::vector<SanctionRecord>> ss) {
    Room* r = find_room(room);
    // Unreadable now: the node goes by what it knows.
    if (ss.ok() && r != nullptr) {
      r->sanctions.clear();
      for (SanctionRecord& s : *ss) {
        std::string user = s.user;
        r->sanctions[user] = std::move(s);
      }
    }
    done();
  });
}

void Rooms::load_missing_rooms(bool fresh, std::function<void()> done) {
  uint64_t now = now_ms();
  if (!fresh && now - rooms_listed_ms_ < 1000) return done();
  rooms_listed_ms_ = now;
  store_->list_rooms([this, done](Result<std::vector<RoomRecord>> recs) {
    auto missing = std::make_shared<std::vector<std::string>>();
    if (recs.ok())
      for (const RoomRecord& rec : *recs)
        if (find_room(rec.id) == nullptr) missing->push_back(rec.id);
    load_rooms_from(std::move(missing), 0, done);
  });
}

void Rooms::load_rooms_from(std::shared_ptr<std::vector<std::string>> rooms, size_t i,
                            std::function<void()> done) {
  // One after the other: the store's reader answers in order anyway.
  if (i == rooms->size()) return done();
  std::string room = (*rooms)[i];
  load_room(room, [this, rooms = std::move(rooms), i, done = std::move(done)]() mutable {
    load_rooms_from(std::move(rooms), i + 1, std::move(done));
  });
}

void Rooms::reread_member(const std::string& room, const std::string& who, int tries,
                          std::function<void()> done) {
  Room* r0 = find_room(room);
  uint64_t changes = r0 != nullptr ? r0->local_member_changes : 0;
  store_->member(room, who, [this, room, who, tries, changes, done](Result<MemberRecord> m) {
    Room* r = find_room(room);
    if ((!m.ok() && !m.status().is_not_found()) || r == nullptr) return done();
    if (r->local_member_changes != changes) {
      // A member joined or left here while the read was on its way: it may
      // predate that, so read again (what this node committed stands when
      // the reads keep being overtaken).
      if (tries > 1) return reread_member(room, who, tries - 1, done);
      return done();
    }
    if (m.ok())
      take_member(*r, room, std::move(*m));
    else
      r->members.erase(who);
    done();
  });
}

void Rooms::next_remote(const std::string& room) {
  // Takes the room's first event off the queue and delivers it.
  auto deliver = [this, room](const std::vector<std::string>& before) {
    auto q = remote_.find(room);
    if (q == remote_.end() || q->second.empty()) return;
    std::string f = std::move(q->second.front());
    q->second.pop_front();
    bus_->send_event(EventTarget::kRoom, room, f);
    // Those the event took out of the room still hear of it.
    Room* r = find_room(room);
    for (const std::string& uid : before)
      if (r == nullptr || r->members.count(uid) == 0) bus_->send_event(EventTarget::kUser, uid, f);
  };
  for (;;) {
    auto qi = remote_.find(room);
    if (qi == remote_.end()) return;
    if (qi->second.empty()) {
      remote_.erase(qi);
      return;
    }
    if (qi->second.front().empty()) {
      // The re-read after Redis was away (resync_rooms).
      resync_room(room, kRereads, [this, room] {
        auto q = remote_.find(room);
        if (q != remote_.end() && !q->second.empty()) q->second.pop_front();
        next_remote(room);
      });
      return;
    }
    JsonPtr root(cJSON_Parse(qi->second.front().c_str()));
    const char* op = root ? get_string(root.get(), "op") : nullptr;
    std::string_view opv = op != nullptr ? op : "";
    // The seq a `message` or `deleted` names (0: none).
    const cJSON* seq_field = root ? get_field(root.get(), "seq") : nullptr;
    uint64_t seq = cJSON_IsNumber(seq_field) && seq_field->valuedouble >= 1
                       ? static_cast<uint64_t>(seq_field->valuedouble)
                       : 0;
    if (Room* r = find_room(room); r != nullptr && seq != 0) {
      // The room's newest seq as the other node committed it (what `join`,
      // `rooms` and the cap of a read marker here go by).
      if (opv == "message") {
        r->rec.last_seq = std::max(r->rec.last_seq, seq);
        // A post counts as read by its author (the other node's store
        // moved their marker with it).
        const cJSON* from = get_field(root.get(), "from");
        const char* author = from != nullptr ? get_string(from, "id") : nullptr;
        if (author != nullptr && member(*r, author) != nullptr) raise_marker(room, author, seq);
      }
      if (opv == "deleted") {
        auto at = std::lower_bound(r->deleted.begin(), r->deleted.end(), seq);
        if (at == r->deleted.end() || *at != seq) r->deleted.insert(at, seq);
      }
    }
    if (find_room(room) == nullptr) {
      // A room this node has not seen yet (created on another node after
      // this one loaded its rooms): read whole, members included, first.
      load_room(room, [this, room, deliver] {
        deliver({});
        next_remote(room);
      });
      return;
    }
    if (!keeps_state(opv)) {
      std::vector<std::string> before;
      if (Room* r = find_room(room); r != nullptr)
        for (const auto& [uid, m] : r->members) before.push_back(uid);
      // Only the member the event names is read again: a whole list read
      // while a member joins here could land after the join and drop them.
      const cJSON* user = root ? get_field(root.get(), "user") : nullptr;
      const char* uid = user != nullptr ? get_string(user, "id") : nullptr;
      std::string who = uid != nullptr ? uid : "";
      refresh_room(room, [this, room, deliver, before, who] {
        if (who.empty() || find_room(room) == nullptr) {
          deliver(before);
          next_remote(room);
          return;
        }
        reread_member(room, who, kRereads, [this, room, deliver, before] {
          deliver(before);
          next_remote(room);
        });
      });
      return;
    }
    deliver({});
  }
}

}  // namespace hut::rooms

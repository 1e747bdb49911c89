// The rooms calls of an embedding program (hut::Space) and the room creation
// they share with the management API. Posts go through submit(), the one post
// pipeline, like those of every other route.
#include "rooms/rooms.h"

namespace hut::rooms {

Result<std::string> Rooms::local_members(std::string_view room, std::string_view after, size_t limit) {
  Room* r = find_room(room);
  if (r == nullptr) return Status::not_found("no room named " + std::string(room));
  std::string after_id(after);
  bool more = false;
  std::string page = members_page(*r, after.empty() ? nullptr : &after_id, limit, &more);
  return R"({"members":)" + page + R"(,"more":)" + (more ? "true" : "false") + '}';
}

void Rooms::create_room(RoomRecord rec, std::vector<MemberRecord> members, std::function<void(Status)> done) {
  std::string_view id = rec.id;
  bool valid = !id.empty() && id.size() <= 64 && id.find_first_of("/?#% ") == std::string_view::npos;
  if (!valid)
    return done(Status::invalid_argument("a room id is 1 to 64 characters without / ? # % or space"));
  if (rooms_.count(rec.id) != 0 || creating_.count(rec.id) != 0)
    return done(Status::already_exists("the room exists"));
  creating_.insert(rec.id);
  store_->create_room(rec, members, [this, rec, members, done = std::move(done)](Status st) {
    creating_.erase(rec.id);
    if (!st.ok()) return done(st);
    Room& r = rooms_[rec.id];
    r.rec = rec;
    for (const MemberRecord& mr : members) {
      r.members[mr.user.id] = mr;
      users_.try_emplace(mr.user.id, mr.user);  // a known user from now on (the store has them)
    }
    done(Status());
  });
}

}  // namespace hut::rooms

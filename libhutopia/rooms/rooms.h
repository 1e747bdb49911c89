// The chat rooms (contract section 2, room ops and events): room state in
// memory, read once from the store at start, every change written through the
// store and announced only after its commit.
//
// Thread: the loop thread only.
// Ownership: the Space owns Rooms, the Store and the Bus; Rooms borrows the
// store and the bus, which must outlive it. Store callbacks capture `this`, so
// the store must be closed (or destroyed) before Rooms is destroyed. Rooms
// owns one timer for the mutes that end (unreferenced: it never keeps the loop
// alive); the destructor closes it, and the loop must run once more to free it.
#ifndef HUTOPIA_ROOMS_ROOMS_H_
#define HUTOPIA_ROOMS_ROOMS_H_

#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"
#include "net/server.h"
#include "plugins/runtime.h"
#include "store/store.h"

namespace hut::rooms {

// The contract's user object, {"id","name","avatar"?}, as JSON text.
std::string user_obj(const UserRecord& u);
// The one shape of a message in `history`, `message` events and the
// management API: {"room","seq","ts","from","text","data"?,"edited_ts"?},
// led by "op":op when `op` is given (the `message` event).
std::string message_json(const MessageRecord& m, std::string_view op = {});
// A history page's members, "messages":[...],"more":BOOL, without braces:
// the bus reply, the plugins' room_history and the management API wrap them.
std::string history_fields(const HistoryPage& page);

// The other user of a direct-message room from its dm_key, seen by `me`;
// empty when `me` is not one of the two.
std::string dm_other(std::string_view dm_key, std::string_view me);

class Rooms final : public bus::RoomHooks {
 public:
  struct Options {
    double post_rate = 50;              // posts per second per session
    double post_burst = 500;            // bucket size
    int64_t typing_interval_ms = 1000;  // one typing op per room and session per interval
    size_t max_text = 16384;            // bytes of UTF-8 in a post or edit
    // Bytes a paged reply (history, members) is kept under, so that no reply
    // the space builds comes near the backpressure limit.
    size_t max_reply = 262144;
    // Rooms one bus user may have created that still exist (direct-message
    // rooms and the management API's rooms do not count); 0: no limit.
    size_t rooms_per_user = 100;
    // New direct-message rooms one user may open per hour (a bucket of that
    // size, refilled evenly); opening an existing one is free.
    double dms_per_hour = 60;
  };

  Rooms(Options options, uv_loop_t* loop, Store* store, bus::Bus* bus);
  ~Rooms() override;
  Rooms(const Rooms&) = delete;
  Rooms& operator=(const Rooms&) = delete;

  // Reads rooms, members, read markers and deleted seqs from the store, and
  // arms the timer for the mutes that end. Before serving.
  Status load();

  // The plugins whose room hooks see joins, leaves, presence and posts;
  // borrowed, nullptr for none (set it to nullptr before the runtime ends).
  void set_plugins(PluginRuntime* plugins) { plugins_ = plugins; }

  // The other nodes of a cluster (docs/cluster.md): a user is online when
  // they have a session here or on another node, and events for a user
  // (typing) reach their sessions there too. Unset: this node is the whole
  // space.
  struct ClusterHooks {
    std::function<bool(std::string_view user)> online_elsewhere;
    // A user's first session here opened (true) or last one closed.
    std::function<void(std::string_view user, bool online)> local_changed;
    // A frame for a user's sessions on the other nodes.
    std::function<void(std::string_view user, const std::string& frame)> to_user_elsewhere;
    // A room event for the members of the room on the other nodes.
    std::function<void(std::string_view room, const std::string& frame)> to_room_elsewhere;
  };
  void set_cluster_hooks(ClusterHooks hooks) { cluster_ = std::move(hooks); }
  // A user came online on another node, or is now online on no other node:
  // announced here unless they have a session on this node.
  void remote_presence(std::string_view user, bool online);
  // The users with a session on this node.
  std::vector<std::string> local_users() const;
  // A room event another node published (rooms_remote.cc): the room's state
  // is read again from the store when the event changes it, then the frame
  // goes to this node's sessions of the room's members (and of those it
  // removed). One room's events are handled in the order they came.
  void remote_room_event(std::string room, std::string frame);
  // An event another node sent to one user: delivered to the user's
  // sessions here; a `read` also moves this node's copy of the marker.
  void remote_user_event(const std::string& user, const std::string& frame);
  // After Redis was away: every room this node knows is read again (record,
  // members, sanctions), in order with the rooms' events that follow, and
  // rooms created meanwhile are loaded.
  void resync_rooms();

  // RoomHooks.
  void handle_op(bus::Session& session, const bus::ClientFrame& frame) override;
  std::string welcome_rooms(const bus::Session& session) override;
  void for_each_member(std::string_view room, const std::function<void(const std::string&)>& fn) override;
  void session_welcomed(bus::Session& session) override;
  void session_closed(bus::Session& session) override;

  // The management API's rooms routes (contract section 4): `ex->path`
  // starts with /api/v1/rooms; the caller has checked the admin token.
  void handle_admin(const std::shared_ptr<net::HttpExchange>& ex);

  // Rooms for plugins (ABI 1.1), with HUT_* results: a post as the plugin's
  // bot user, a history page, the members JSON.
  int plugin_post(std::string_view plugin, std::string_view room, std::string_view text,
                  std::string_view data_json, PluginServices::RoomDone done);
  int plugin_history(std::string_view room, uint64_t before, int limit, PluginServices::RoomDone done);

  // A post or an edit on its way into a room, from any route: the bus, the
  // management API or a plugin. Every one goes through submit(), the one post
  // pipeline (post_pipeline.cc).
  struct Submission {
    bool edit = false;
    std::string room;
    UserRecord from;            // the author; for an edit, who asks (only the author may)
    uint64_t seq = 0;           // an edit: the message whose text it replaces
    std::string text;           // UTF-8, at most Options::max_text bytes
    std::string data_json;      // a post's data as JSON text, empty for none
    bool members_only = false;  // the author must be a member of the room (the bus)
    std::string session;        // the bus session whose post budget pays; empty for none
    std::string plugin;         // a plugin's own post: its own filter does not see it
    bool room_loaded = false;   // the room was looked for in the shared store already
  };
  // What became of a submission: ok with the message's seq and ts (an edit:
  // its edited_ts), or the error the route turns into its own vocabulary.
  struct Outcome {
    bool ok = false;
    bus::ErrorCode code = bus::ErrorCode::kInternal;
    std::string message;
    uint64_t seq = 0;
    int64_t ts = 0;
  };
  // In order: the room exists; membership when asked; text and data sizes;
  // the author's mute (their own or mute-all) when they are a member; the
  // session's post budget; the plugins' post filters (all but the posting
  // plugin's own); then the store append, `done`, and the room event
  // (`message` or `edited`). A refusal calls `done` before submit returns;
  // a stored one calls it from the store's callback, before the event.
  void submit(Submission s, std::function<void(const Outcome&)> done);
  int plugin_members(std::string_view room, std::string* json);

  // The embedding program's calls (hut::Space, rooms_local.cc). A page of
  // members as {"members":[...],"more":BOOL}, in the order of the bus op;
  // kNotFound for an unknown room.
  Result<std::string> local_members(std::string_view room, std::string_view after, size_t limit);
  // Creates a room with its first members, as the management API does (no
  // quota applies): kInvalidArgument for a bad id, kAlreadyExists, or the
  // store's error; `done` runs after the commit, or before create_room returns
  // on a refusal.
  void create_room(RoomRecord rec, std::vector<MemberRecord> members, std::function<void(Status)> done);
  // The record of a user as the rooms know it (name and avatar seen last).
  UserRecord known_user(std::string_view id) const { return user_record(id); }

  size_t room_count() const { return rooms_.size(); }

  // A reload's new room quota and DM budget; budgets already spent stay spent.
  void set_quotas(size_t rooms_per_user, double dms_per_hour) {
    options_.rooms_per_user = rooms_per_user;
    options_.dms_per_hour = dms_per_hour;
  }

  // From a post's arrival to its ok (after the commit), for posts that
  // got one.
  const Histogram& post_seconds() const { return post_seconds_; }
  // A reload's new post budget; sessions keep their tokens.
  void set_post_budget(double rate, double burst) {
    options_.post_rate = rate;
    options_.post_burst = burst;
  }

 private:
  struct Room {
    RoomRecord rec;
    std::map<std::string, MemberRecord> members;  // by user id
    std::vector<uint64_t> deleted;                // seqs of deleted messages, ascending
    // Users who are not members with a mute kept from when they left, or a
    // ban, by user id (the store's sanctions).
    std::map<std::string, SanctionRecord> sanctions;
    // Counts the members this node added or removed (its own commits): a
    // member read from the shared store for another node's event is applied
    // only when none came in between, since a read begun before a local
    // join can land after it (next_remote).
    uint64_t local_member_changes = 0;
  };
  // A user's budget of new direct-message rooms.
  struct Bucket {
    double tokens = 0;
    int64_t refill_ms = 0;
  };
  // A mute that ends: when `due` (wall ms) passes, the mute that ends at
  // `until` is cleared in the store and `unmuted` is sent, unless the member's
  // mute changed meanwhile. `due` is later than `until` for a retry.
  using Expiry = std::tuple<int64_t, int64_t, std::string, std::string>;  // due, until, room, user
  // What an op handler needs to answer.
  struct Ctx {
    std::string session;
    std::string ref;
    UserRef user;
  };

  void reply_ok(const Ctx& c, std::string_view fields = {});
  void reply_error(const Ctx& c, bus::ErrorCode code, std::string_view message);
  void reply_status(const Ctx& c, const Status& st);
  void to_room(std::string_view room, const std::string& frame);
  void to_user(std::string_view user, const std::string& frame, std::string_view except_session = {});
  // to_user, and the user's sessions on the other nodes of a cluster.
  void to_user_everywhere(std::string_view user, const std::string& frame,
                          std::string_view except_session = {});

  uint64_t now_ms();
  int64_t wall_ms() const;
  Room* find_room(std::string_view id);
  const MemberRecord* member(const Room& r, std::string_view user) const;
  // The member `user` of the loaded room `room`, or nullptr (say, after a
  // store write, when either may have gone meanwhile).
  MemberRecord* loaded_member(std::string_view room, std::string_view user);
  bool is_muted(const Room& r, const MemberRecord& m);
  bool online(std::string_view user) const;
  uint64_t unread(const Room& r, std::string_view user) const;
  std::string user_json(std::string_view id) const;
  // A room event about one member: {"op","room","user", then `extra`}.
  // `extra` is more members of the object, each led by a comma.
  std::string member_event(std::string_view op, std::string_view room, std::string_view uid,
                           std::string_view extra = {}) const;
  // A member was added (join, or the management API): `joined` to the room
  // and the plugins' member_joined hook.
  void member_added(const std::string& room, const MemberRecord& m);
  // A member is gone (leave or kick): `left` to the room while they are still
  // in it, `kicked` to them when `kicked_by` (a user object) is not empty, and
  // the plugins' member_left hook. Nothing when they were no longer a member.
  void member_removed(const std::string& room, const std::string& uid, std::string_view kicked_by = {});
  std::string members_json(const Room& r);
  // A page of members as a JSON array: online first, then by id, the ones
  // after `after` (nullptr: from the start), at most `limit` and under
  // max_reply bytes; `more` when some are left.
  std::string members_page(const Room& r, const std::string* after, size_t limit, bool* more);
  // Cuts a history page to max_reply bytes (see op_history).
  void trim_page(HistoryPage* page, bool forward) const;
  UserRecord user_record(std::string_view id) const;
  std::set<std::string> peers(std::string_view user) const;
  void announce_presence(std::string_view user, bool online);
  void local_presence(std::string_view user, bool online);

  // Common gate: the room exists (not_found) and, when private, the user is
  // a member (forbidden). Returns nullptr after answering.
  Room* room_for(const Ctx& c, const cJSON* root, bool members_only);
  // The room of an op on one message of it (delete, read): a string "room"
  // and a "seq" (into *seq; bad_request naming `op` otherwise), then the
  // room gate for members. Returns nullptr after answering.
  Room* message_target(const Ctx& c, const cJSON* root, std::string_view op, uint64_t* seq);
  // The room of a kick, mute or unmute whose target ("user") the caller may
  // moderate: room and user are strings and `args_ok` (the op's other
  // arguments are well formed; `usage` answers otherwise), the room gate, and
  // the caller's role above the target's. Returns nullptr after answering.
  Room* moderated_room(const Ctx& c, const cJSON* root);
  Room* moderation_target(const Ctx& c, const cJSON* root, bool args_ok, std::string_view usage);

  void op_rooms(const Ctx& c, const cJSON* root);
  void op_create(const Ctx& c, const cJSON* root);
  void op_join(const Ctx& c, const cJSON* root);
  // op_join once the room is known (and, on a shared store, its sanctions
  // read again).
  void join_room(const Ctx& c, const std::string& id);
  void op_leave(const Ctx& c, const cJSON* root);
  void op_post(const Ctx& c, const cJSON* root);
  void op_edit(const Ctx& c, const cJSON* root);
  void op_delete(const Ctx& c, const cJSON* root);
  void op_history(const Ctx& c, const cJSON* root);
  void op_read(const Ctx& c, const cJSON* root);
  void op_typing(const Ctx& c, const cJSON* root);
  void op_members(const Ctx& c, const cJSON* root);
  void op_dm(const Ctx& c, const cJSON* root);
  void op_kick(const Ctx& c, const cJSON* root);
  void op_mute(const Ctx& c, const cJSON* root);
  void op_unmute(const Ctx& c, const cJSON* root);
  void op_mute_all(const Ctx& c, const cJSON* root);
  void op_role(const Ctx& c, const cJSON* root);
  void op_ban(const Ctx& c, const cJSON* root);
  void op_unban(const Ctx& c, const cJSON* root);

  // Stores a member's mute (nullopt: lifts it); then memory, the answer to
  // `c` ("until" as `until_json`) and `muted` or `unmuted` to the room.
  void write_mute(const Ctx& c, const std::string& id, const std::string& uid, std::optional<int64_t> until,
                  const std::string& until_json);
  // Bans and mutes kept across leave and join.
  bool is_banned(const Room& r, std::string_view user) const;
  // Gives a member about to be added the mute they left with, when it has
  // not ended.
  void restore_mute(const Room& r, MemberRecord* m);
  // Writes a ban (removing the user from the room) or lifts it; answers `c`.
  void write_ban(const Ctx& c, const std::string& room, const std::string& user, bool banned);
  // After a ban was stored: the user leaves the room (`kicked` by `by`, a
  // user object, when they were a member) and stays out; or the ban is lifted.
  void ban_committed(const std::string& room, const std::string& user, bool banned, std::string_view by);
  // Rooms `user` created over the bus that exist or are being created.
  size_t rooms_created_by(std::string_view user) const;

  using ExPtr = std::shared_ptr<net::HttpExchange>;
  void admin_route(const ExPtr& ex);
  void admin_list(const ExPtr& ex);
  void admin_create(const ExPtr& ex);
  void admin_get(const ExPtr& ex, const std::string& room);
  void admin_delete(const ExPtr& ex, const std::string& room);
  void admin_put_member(const ExPtr& ex, const std::string& room, const std::string& user);
  void admin_kick(const ExPtr& ex, const std::string& room, const std::string& user);
  // PUT (ban, removing the user when a member) or DELETE (lift) a ban.
  void admin_ban(const ExPtr& ex, const std::string& room, const std::string& user, bool banned);
  void admin_post(const ExPtr& ex, const std::string& room);
  void admin_history(const ExPtr& ex, const std::string& room);
  // A post or edit from a bus session: its author, room and text, members
  // only, paid from the session's post budget.
  Submission bus_submission(const Ctx& c, const char* room, const char* text);
  // The steps of submit() after its checks.
  void store_post(Submission s, std::function<void(const Outcome&)> done);
  void store_edit(Submission s, std::function<void(const Outcome&)> done);
  // Takes one post from a bus session's budget; false when it is spent.
  bool take_post_token(const std::string& session);

  // Mutes that end (see Expiry). Writes that may change a member's mute are
  // counted while in flight; an expiry waits for them.
  void watch_mute(const std::string& room, const std::string& user, std::optional<int64_t> until);
  void mute_write_begin(const std::string& room, const std::string& user);
  void mute_write_end(const std::string& room, const std::string& user);
  void arm_mute_timer();
  void expire_mutes();
  void clear_expired_mute(const std::string& room, const std::string& user, int64_t until);
  // Drops a room from memory after telling its online members.
  void remove_room(const std::string& room);

  UserRef user_ref(std::string_view id) const;

  Options options_;
  Histogram post_seconds_;
  PluginRuntime* plugins_ = nullptr;
  ClusterHooks cluster_;
  uv_loop_t* loop_;
  Store* store_;
  bus::Bus* bus_;
  std::map<std::string, Room> rooms_;
  std::set<std::string> creating_;                         // room ids whose create is not committed yet
  std::map<std::string, std::string> creating_by_;         // room id -> creator, bus creates in flight
  std::set<std::pair<std::string, std::string>> banning_;  // (room, user): ban not committed yet
  std::unordered_map<std::string, Bucket> dm_budget_;      // by user id
  std::set<std::string> users_saving_;                     // user ids whose put_user is in flight
  std::map<std::pair<std::string, std::string>, uint64_t> markers_;  // (room, user) -> seq
  // Moves the user's marker in the room to `seq` unless it is past it
  // already (a marker never moves back); the marker after.
  uint64_t raise_marker(const std::string& room, const std::string& user, uint64_t seq) {
    uint64_t& mk = markers_[{room, user}];
    mk = std::max(mk, seq);
    return mk;
  }
  // A session's own state lives in bus::Session::rooms; the bus finds
  // sessions by id and by user.
  std::unordered_map<std::string, UserRecord> users_;  // names seen
  std::unordered_map<std::string, std::deque<std::string>>
      remote_;  // room -> events from other nodes, in order
  void next_remote(const std::string& room);
  // Reads member `who` of `room` from the shared store and applies it, again
  // (at most `tries` reads) while members joined or left here meanwhile.
  static constexpr int kRereads = 3;
  void reread_member(const std::string& room, const std::string& who, int tries, std::function<void()> done);
  void refresh_room(const std::string& room, std::function<void()> done);
  // A member as read from the shared store: kept in `r` (of id `room`), its
  // user remembered and its mute watched.
  void take_member(Room& r, const std::string& room, MemberRecord m);
  // The room's record, members, sanctions and read markers read again; the
  // member list is taken only when this node changed none meanwhile (read
  // again, up to `tries` times).
  void resync_room(const std::string& room, int tries, std::function<void()> done);
  // The room's read markers as the shared store has them; none moves back.
  void refresh_markers(const std::string& room, std::function<void()> done);
  // In a cluster (cluster hooks set), a room another node created after this
  // one loaded its rooms is missing here: load_room reads it and all its
  // members from the shared store, then calls `done` on the loop (whether
  // the room exists or not). A room op or a submission naming a room this
  // node does not have waits for it once before it is refused.
  bool shared_store() const { return static_cast<bool>(cluster_.to_room_elsewhere); }
  void load_room(const std::string& room, std::function<void()> done);
  // On a shared store, the room's sanctions read again (a ban or a kept mute
  // another node wrote reaches this one with no event: a ban of a non-member
  // sends none) before someone is admitted; then `done` on the loop. At once
  // on a store of this node's own.
  void refresh_sanctions(const std::string& room, std::function<void()> done);
  // Every room of the shared store this node does not have, loaded as by
  // load_room; then `done` (also when the store cannot list them). Unless
  // `fresh`, at most once a second (what sessions ask may not make every
  // request a scan of the store).
  void load_missing_rooms(bool fresh, std::function<void()> done);
  void load_rooms_from(std::shared_ptr<std::vector<std::string>> rooms, size_t i, std::function<void()> done);
  uint64_t rooms_listed_ms_ = 0;  // when load_missing_rooms last listed the store's rooms
  void dispatch_op(const Ctx& c, bus::Op op, const cJSON* root);
  std::set<Expiry> expiries_;                                       // earliest first
  std::map<std::pair<std::string, std::string>, int> mute_writes_;  // (room, user) -> in flight
  uv_timer_t* mute_timer_ = nullptr;                                // heap; freed by its close callback
  int filtering_ = 0;                                               // > 0 while the plugins' post filters run
};

}  // namespace hut::rooms

#endif  // HUTOPIA_ROOMS_ROOMS_H_

#include "cluster/message.h"

#include <cjson/cJSON.h>

#include "util/json.h"

namespace hut::cluster {
namespace {

struct KindName {
  Message::Kind kind;
  std::string_view name;
};
constexpr KindName kKinds[] = {
    {Message::Kind::kHeartbeat, "heartbeat"},
    {Message::Kind::kPresence, "presence"},
    {Message::Kind::kEvent, "event"},
    {Message::Kind::kKv, "kv"},
};

struct TargetName {
  EventTarget target;
  std::string_view name;
};
constexpr TargetName kTargets[] = {
    {EventTarget::kUser, "user"},
    {EventTarget::kEveryone, "everyone"},
    {EventTarget::kRoom, "room"},
};

Status bad(std::string_view why) { return Status::invalid_argument("cluster message: " + std::string(why)); }

// The text of `member`, an object that is the last member of `root` parsed
// from `text`, as written there (as this file encodes it), without printing
// it again. Only when every member before it is a scalar: then the first
// `"name"` in the text that stands where a key does (after `{` or `,`,
// before `:`) is the member's own, since a quote inside a string is escaped.
// False when the text is shaped otherwise.
bool raw_last_member(const cJSON* root, const cJSON* member, std::string_view text, std::string_view name,
                     std::string* out) {
  if (member->next != nullptr) return false;
  for (const cJSON* c = root->child; c != member; c = c->next)
    if (cJSON_IsObject(c) || cJSON_IsArray(c)) return false;
  constexpr std::string_view kSpace = " \t\r\n";
  const std::string quoted = "\"" + std::string(name) + "\"";
  size_t at = text.find(quoted);
  if (at == std::string_view::npos) return false;
  size_t before = text.find_last_not_of(kSpace, at == 0 ? 0 : at - 1);
  if (at == 0 || before == std::string_view::npos || (text[before] != '{' && text[before] != ','))
    return false;
  size_t colon = text.find_first_not_of(kSpace, at + quoted.size());
  if (colon == std::string_view::npos || text[colon] != ':') return false;
  size_t first = text.find_first_not_of(kSpace, colon + 1);
  size_t close = text.find_last_not_of(kSpace);  // the root's closing brace
  if (first == std::string_view::npos || close == std::string_view::npos || first >= close ||
      text[first] != '{' || text[close] != '}')
    return false;
  size_t last = text.find_last_not_of(kSpace, close - 1);
  if (last == std::string_view::npos || last < first || text[last] != '}') return false;
  *out = std::string(text.substr(first, last - first + 1));
  return true;
}

}  // namespace

std::string encode_message(const Message& m) {
  JsonObject o;
  o.num("v", kMessageVersion).str("node", m.node);
  for (const KindName& k : kKinds)
    if (k.kind == m.kind) o.str("kind", k.name);
  switch (m.kind) {
    case Message::Kind::kHeartbeat: {
      JsonArray users;
      for (const std::string& u : m.users) users.str(u);
      o.raw("users", users.done());
      break;
    }
    case Message::Kind::kPresence:
      o.str("user", m.user).boolean("online", m.online);
      break;
    case Message::Kind::kEvent:
      for (const TargetName& t : kTargets)
        if (t.target == m.target) o.str("to", t.name);
      if (m.target != EventTarget::kEveryone) o.str("id", m.target_id);
      o.raw("frame", m.frame);
      break;
    case Message::Kind::kKv:
      o.str("plugin", m.plugin).str("key", m.key);
      break;
  }
  return o.done();
}

Result<Message> parse_message(std::string_view text) {
  const char* end = nullptr;
  JsonPtr root(cJSON_ParseWithLengthOpts(text.data(), text.size(), &end, 0));
  if (!root || !cJSON_IsObject(root.get())) return bad("not a JSON object");
  // What follows the object is not part of it.
  text = text.substr(0, static_cast<size_t>(end - text.data()));
  const cJSON* v = get_field(root.get(), "v");
  if (!cJSON_IsNumber(v) || v->valuedouble != kMessageVersion) return bad("unknown version");
  Message m;
  const char* node = get_string(root.get(), "node");
  const char* kind = get_string(root.get(), "kind");
  if (node == nullptr || *node == '\0') return bad("no node");
  if (kind == nullptr) return bad("no kind");
  m.node = node;
  const KindName* k = nullptr;
  for (const KindName& c : kKinds)
    if (c.name == kind) k = &c;
  if (k == nullptr) return bad("unknown kind");
  m.kind = k->kind;
  switch (m.kind) {
    case Message::Kind::kHeartbeat: {
      const cJSON* users = get_field(root.get(), "users");
      if (!cJSON_IsArray(users)) return bad("a heartbeat needs users");
      const cJSON* u = nullptr;
      cJSON_ArrayForEach(u, users) {
        if (!cJSON_IsString(u) || *u->valuestring == '\0') return bad("a user id is a non-empty string");
        m.users.emplace_back(u->valuestring);
      }
      return m;
    }
    case Message::Kind::kPresence: {
      const char* user = get_string(root.get(), "user");
      const cJSON* online = get_field(root.get(), "online");
      if (user == nullptr || *user == '\0' || !cJSON_IsBool(online))
        return bad("presence needs user and online");
      m.user = user;
      m.online = cJSON_IsTrue(online);
      return m;
    }
    case Message::Kind::kEvent: {
      const char* to = get_string(root.get(), "to");
      const TargetName* t = nullptr;
      for (const TargetName& c : kTargets)
        if (to != nullptr && c.name == to) t = &c;
      if (t == nullptr) return bad("an event goes to a user, a room or everyone");
      m.target = t->target;
      if (m.target != EventTarget::kEveryone) {
        const char* id = get_string(root.get(), "id");
        if (id == nullptr || *id == '\0') return bad("an event to a user or a room needs its id");
        m.target_id = id;
      }
      const cJSON* frame = get_field(root.get(), "frame");
      if (!cJSON_IsObject(frame) || !cJSON_IsString(get_field(frame, "op")))
        return bad("an event needs a frame");
      if (raw_last_member(root.get(), frame, text, "frame", &m.frame)) return m;
      char* printed = cJSON_PrintUnformatted(frame);
      if (printed == nullptr) return Status::resource_exhausted("cluster message: out of memory");
      m.frame = printed;
      cJSON_free(printed);
      return m;
    }
    case Message::Kind::kKv: {
      const char* plugin = get_string(root.get(), "plugin");
      const char* key = get_string(root.get(), "key");
      if (plugin == nullptr || *plugin == '\0' || key == nullptr || *key == '\0')
        return bad("a value change needs plugin and key");
      m.plugin = plugin;
      m.key = key;
      return m;
    }
  }
  return bad("unknown kind");
}

}  // namespace hut::cluster

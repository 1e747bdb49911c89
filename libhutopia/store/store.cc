#include "store/store.h"

#include <filesystem>
#include <system_error>

#include "store/pg_store.h"
#include "store/sqlite_store.h"
#include "util/table.h"

namespace hut {

constexpr std::pair<Role, std::string_view> kRoleNames[] = {
    {Role::kMember, "member"}, {Role::kModerator, "moderator"}, {Role::kMaster, "master"}};

std::string_view role_name(Role role) { return util::second_of(kRoleNames, role).value_or("member"); }

bool parse_role(std::string_view name, Role* out) {
  std::optional<Role> role = util::first_of(kRoleNames, name);
  if (role) *out = *role;
  return role.has_value();
}

std::string dm_key(std::string_view user_a, std::string_view user_b) {
  std::string_view lo = user_a < user_b ? user_a : user_b;
  std::string_view hi = user_a < user_b ? user_b : user_a;
  // The length prefix keeps the key unambiguous whatever the ids hold.
  std::string key = std::to_string(lo.size());
  key += ':';
  key += lo;
  key += hi;
  return key;
}

Result<StoreUrl> parse_store_url(std::string_view url) {
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) {
    return Status::invalid_argument("store URL '" + std::string(url) +
                                    "' has no scheme; expected sqlite://<path> or postgres://...");
  }
  std::string_view scheme = url.substr(0, sep);
  if (scheme == "postgres" || scheme == "postgresql") return StoreUrl{true, {}};
  if (scheme != "sqlite") {
    return Status::not_supported("store URL scheme '" + std::string(scheme) +
                                 "' is not supported; use sqlite://<path> or postgres://...");
  }
  std::string path(url.substr(sep + 3));
  if (path.empty()) return Status::invalid_argument("store URL '" + std::string(url) + "' names no file");
  return StoreUrl{false, std::move(path)};
}

Result<std::unique_ptr<Store>> open_store(uv_loop_t* loop, std::string_view url,
                                          const StoreOptions& options) {
  Result<StoreUrl> parsed = parse_store_url(url);
  if (!parsed.ok()) return parsed.status();
  if (options.max_batch == 0) return Status::invalid_argument("store max_batch must be at least 1");
  if (parsed->postgres) return open_pg_store(loop, std::string(url), options);
  const std::string& path = parsed->path;
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return Status::io_error("cannot create the store directory " + parent.string() + ": " + ec.message());
    }
  }
  return open_sqlite_store(loop, path, options);
}

}  // namespace hut

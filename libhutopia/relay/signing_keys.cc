#include "relay/signing_keys.h"

#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/file.h"
#include "util/random.h"

namespace hut::relay {

namespace {

// The first line of a small file, without its line end; nullopt when the
// file cannot be read.
std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

Status make_dir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::io_error("cannot create " + dir + ": " + std::strerror(errno));
  return Status();
}

}  // namespace

Status SigningKeys::ensure() {
  HUT_RETURN_IF_ERROR(make_dir(dir_));
  std::optional<std::string> cur = read_line(dir_ + "/current");
  if (cur && !cur->empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    return reload_locked();
  }
  Result<std::string> kid = rotate(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  return kid.ok() ? Status() : kid.status();
}

Result<std::string> SigningKeys::rotate(int64_t now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  HUT_RETURN_IF_ERROR(make_dir(dir_));
  std::optional<std::string> old = read_line(dir_ + "/current");
  std::string kid = random_token(12);
  Result<Key> key = Key::generate_ed25519(kid);
  if (!key.ok()) return key.status();
  HUT_RETURN_IF_ERROR(key->save_pem_file(dir_ + "/" + kid + ".pem"));
  if (old && !old->empty())
    HUT_RETURN_IF_ERROR(
        util::write_file_atomic(dir_ + "/" + *old + ".retired", std::to_string(now_s) + "\n"));
  HUT_RETURN_IF_ERROR(util::write_file_atomic(dir_ + "/current", kid + "\n"));
  current_.reset();
  current_kid_.clear();
  return kid;
}

Status SigningKeys::reload_locked() {
  std::optional<std::string> kid = read_line(dir_ + "/current");
  if (!kid || kid->empty()) return Status::not_found("no current key in " + dir_);
  if (current_ && current_kid_ == *kid) return Status();
  Result<Key> key = Key::load_pem_file(dir_ + "/" + *kid + ".pem", *kid);
  if (!key.ok()) return key.status();
  current_ = *key;
  current_kid_ = *kid;
  return Status();
}

Result<Key> SigningKeys::signing_key() {
  std::lock_guard<std::mutex> lock(mu_);
  HUT_RETURN_IF_ERROR(reload_locked());
  return *current_;
}

Result<std::string> SigningKeys::jwks(int64_t now_s) {
  std::lock_guard<std::mutex> lock(mu_);
  HUT_RETURN_IF_ERROR(reload_locked());
  KeySet set;
  set.add(*current_);
  uv_fs_t req;
  int n = uv_fs_scandir(nullptr, &req, dir_.c_str(), 0, nullptr);
  uv_dirent_t ent;
  while (n > 0 && uv_fs_scandir_next(&req, &ent) != UV_EOF) {
    std::string_view name = ent.name;
    constexpr std::string_view kSuffix = ".retired";
    if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) continue;
    std::string kid(name.substr(0, name.size() - kSuffix.size()));
    std::optional<std::string> when = read_line(dir_ + "/" + std::string(name));
    int64_t retired = when ? std::strtoll(when->c_str(), nullptr, 10) : 0;
    // Tokens signed up to `retired` live token_ttl; spaces allow the leeway.
    if (retired + token_ttl_s_ + kTokenLeewayS < now_s) continue;
    Result<Key> key = Key::load_pem_file(dir_ + "/" + kid + ".pem", kid);
    if (key.ok()) set.add(*key);
  }
  uv_fs_req_cleanup(&req);
  return set.to_jwks();
}

}  // namespace hut::relay

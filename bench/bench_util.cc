// The /proc readers and number parsing of bench_util.h.
#include "bench_util.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <vector>

namespace hut::bench {

std::string source_address(const Options& o, size_t i) {
  if (o.sources <= 1) return {};
  return "127.0.0." + std::to_string(1 + i % static_cast<size_t>(o.sources));
}

bool parse_long(const char* text, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

long read_status_kb(long pid, const char* key) {
  std::string path = pid > 0 ? "/proc/" + std::to_string(pid) + "/status" : "/proc/self/status";
  std::ifstream in(path);
  std::string line;
  size_t key_len = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, key_len, key) == 0 && line.size() > key_len && line[key_len] == ':') {
      return std::strtol(line.c_str() + key_len + 1, nullptr, 10);
    }
  }
  return -1;
}

long long read_cpu_ticks(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return -1;
  // Fields after the command: state is field 3; utime and stime are 14 and 15.
  const char* p = text.c_str() + paren + 1;
  long long utime = 0;
  long long stime = 0;
  for (int field = 3; field <= 15; ++field) {
    while (*p == ' ') ++p;
    if (*p == '\0') return -1;
    if (field == 14) utime = std::strtoll(p, nullptr, 10);
    if (field == 15) stime = std::strtoll(p, nullptr, 10);
    while (*p != ' ' && *p != '\0') ++p;
  }
  return utime + stime;
}

long find_listener_pid(int port) {
  std::vector<std::string> inodes;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      char local[128] = {};
      char remote[128] = {};
      unsigned state = 0;
      unsigned long inode = 0;
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
      if (std::sscanf(line.c_str(), " %*d: %127s %127s %x %*s %*s %*s %*d %*d %lu", local, remote, &state,
                      &inode) != 4)
        continue;
      const char* colon = std::strrchr(local, ':');
      if (!colon || state != 0x0A) continue;
      if (std::strtol(colon + 1, nullptr, 16) == port)
        inodes.push_back("socket:[" + std::to_string(inode) + "]");
    }
  }
  if (inodes.empty()) return 0;
  DIR* proc = opendir("/proc");
  if (!proc) return 0;
  long found = 0;
  while (dirent* e = readdir(proc)) {
    long pid = 0;
    if (!parse_long(e->d_name, 1, 1L << 30, &pid)) continue;
    std::string fd_dir = std::string("/proc/") + e->d_name + "/fd";
    DIR* fds = opendir(fd_dir.c_str());
    if (!fds) continue;
    while (dirent* f = readdir(fds)) {
      char target[64];
      std::string link = fd_dir + "/" + f->d_name;
      ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      target[n] = '\0';
      if (std::find(inodes.begin(), inodes.end(), target) != inodes.end()) {
        found = pid;
        break;
      }
    }
    closedir(fds);
    if (found) break;
  }
  closedir(proc);
  return found;
}
bool raise_fd_limit(long connections) {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return true;
  rlim_t want = static_cast<rlim_t>(connections) + 256;
  if (rl.rlim_cur < want) {
    rl.rlim_cur = std::min(want, rl.rlim_max);
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (rl.rlim_cur < want) {
    std::fprintf(stderr, "hut-bench: the open-file limit (%llu) is below %ld connections + 256\n",
                 static_cast<unsigned long long>(rl.rlim_cur), connections);
    return false;
  }
  return true;
}

namespace {

// "dir/abc.pem" -> "abc": a relay names its key files by their kid.
std::string kid_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = name.rfind(".pem");
  return dot == std::string::npos ? name : name.substr(0, dot);
}

}  // namespace

bool TokenMinter::init(const Options& o) {
  Result<Key> key =
      o.signing_key.empty() ? Key::hs256(o.secret) : Key::load_pem_file(o.signing_key, kid_of(o.signing_key));
  if (!key.ok()) {
    std::fprintf(stderr, "hut-bench: %s\n", key.status().to_string().c_str());
    return false;
  }
  o_ = &o;
  key_ = std::move(*key);
  char run_id[64];
  std::snprintf(run_id, sizeof run_id, "bench-%ld-%" PRIu64, static_cast<long>(getpid()), uv_hrtime());
  run_id_ = run_id;
  now_ = static_cast<int64_t>(std::time(nullptr));
  return true;
}

std::string TokenMinter::token(size_t i) const {
  Claims claims;
  claims.iss = o_->issuer;
  claims.aud = o_->audience;
  claims.sub = "bench-" + std::to_string(i);
  claims.name = "Bench " + std::to_string(i);
  claims.username = "bench" + std::to_string(i);
  claims.jti = run_id_ + "-" + std::to_string(i);
  claims.iat = now_;
  claims.exp = now_ + o_->token_ttl_s;
  Result<std::string> token = sign_token(*key_, claims);
  if (!token.ok()) {
    std::fprintf(stderr, "hut-bench: cannot sign a token: %s\n", token.status().to_string().c_str());
    return {};
  }
  return *token;
}

}  // namespace hut::bench

#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace hut::util {

Status write_file_atomic(const std::string& path, std::string_view data) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string tmp = path + ".tmp-XXXXXX";
  int fd = mkostemp(tmp.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) return Status::io_error(path + ": " + std::strerror(errno));
  auto fail = [&](int err, bool open) {
    if (open) close(fd);
    unlink(tmp.c_str());
    return Status::io_error(path + ": " + std::strerror(err));
  };
  if (fchmod(fd, 0600) != 0) return fail(errno, true);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, true);
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0) return fail(errno, true);
  if (close(fd) != 0) return fail(errno, false);
  if (rename(tmp.c_str(), path.c_str()) != 0) return fail(errno, false);
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::ok_status();
}

}  // namespace hut::util

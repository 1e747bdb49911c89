// Files the space writes whole: the one atomic write.
//
// Thread: blocking disk work; call it off the loop (a uv_queue_work, a
// thread) or at startup, never from a loop callback.
#ifndef HUTOPIA_UTIL_FILE_H_
#define HUTOPIA_UTIL_FILE_H_

#include <hutopia/status.h>

#include <string>
#include <string_view>

namespace hut::util {

// Replaces `path` with `data`, all or nothing: writes a new file of mode
// 0600 beside it, syncs it, renames it over `path` and syncs the folder.
// A reader sees the old content or the new, never a part; on failure the
// old file is untouched and no temporary file is left. IoError names the
// path and the system's reason.
Status write_file_atomic(const std::string& path, std::string_view data);

}  // namespace hut::util

#endif  // HUTOPIA_UTIL_FILE_H_

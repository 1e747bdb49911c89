// Helpers shared by the tests: paths into the source and build trees, temporary
// directories that clean up after themselves, running a child process.
#ifndef HUTOPIA_TEST_TEST_UTIL_H_
#define HUTOPIA_TEST_TEST_UTIL_H_

#include <string>
#include <vector>

namespace hut::test {

// Absolute paths of the source and build trees (from meson).
std::string source_path(const std::string& rel);
std::string build_path(const std::string& rel);

// A fresh directory under $TMPDIR, removed with everything in it when the
// object is destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& content);

// Runs argv[0] with the arguments, stdin from `input`, and returns the exit
// status (-1 if it could not run) with stdout and stderr captured.
struct RunResult {
  int status = -1;
  std::string out;
  std::string err;
};
RunResult run_process(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace hut::test

#endif  // HUTOPIA_TEST_TEST_UTIL_H_

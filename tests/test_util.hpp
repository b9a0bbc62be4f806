#pragma once
// Shared helpers for the tests: repository paths and running the CLI.
#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace diffode::test {

inline std::filesystem::path repo() { return DIFFODE_SOURCE_DIR; }
inline std::filesystem::path model_path(const std::string& name) { return repo() / "models" / name; }
inline std::filesystem::path data_path(const std::string& name) { return repo() / "tests" / "data" / name; }

// A fresh empty directory under the system temp dir, removed by the destructor.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/diffode-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

struct CliResult {
  int code;
  std::string output;  // stdout and stderr together
};

// Runs the diffode binary with `args` (a shell-quoted string), from `cwd`.
inline CliResult run_cli(const std::string& args, const std::filesystem::path& cwd = repo()) {
  const std::string cmd = "cd '" + cwd.string() + "' && '" + std::string(DIFFODE_CLI) + "' " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace diffode::test

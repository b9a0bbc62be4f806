#pragma once
// Shared helpers for the tests: repository paths and running the CLI.
#include <array>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "diffode/core/schedule.hpp"

namespace diffode::test {

// A schedule spec by name (and sigmas, for custom).
inline ScheduleSpec schedule(const std::string& name, std::vector<double> sigmas = {}) {
  ScheduleSpec spec;
  spec.schedule = &find_schedule(name);
  spec.sigmas = std::move(sigmas);
  return spec;
}

// The shape tuple of an .npy header dict, parsed independently of the library's reader.
inline std::vector<int64_t> npy_dict_shape(const std::string& dict) {
  const auto open = dict.find("'shape': (");
  if (open == std::string::npos) return {};
  const auto close = dict.find(')', open);
  std::vector<int64_t> shape;
  std::stringstream s(dict.substr(open + 10, close - open - 10));
  for (std::string part; std::getline(s, part, ',');)
    if (part.find_first_not_of(' ') != std::string::npos) shape.push_back(std::stoll(part));
  return shape;
}

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

// Runs a shell command line from `cwd`, stdout and stderr together.
inline CliResult run_shell(const std::string& command, const std::filesystem::path& cwd) {
  const std::string cmd = "cd '" + cwd.string() + "' && " + command + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  while (size_t n = std::fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Runs the diffode binary with `args` (a shell-quoted string), from `cwd`.
inline CliResult run_cli(const std::string& args, const std::filesystem::path& cwd = repo()) {
  return run_shell("'" + std::string(DIFFODE_CLI) + "' " + args, cwd);
}

}  // namespace diffode::test

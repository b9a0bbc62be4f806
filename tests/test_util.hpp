#pragma once
// Shared helpers for the tests: repository paths and running the CLI.
#include <array>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "diffode/core/error.hpp"
#include "diffode/core/process.hpp"
#include "diffode/core/schedule.hpp"

namespace diffode::test {

// The message of the InputError `f` throws ("(no error)" if none).
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

// ᾱ of a beta list, written here: the cumulative product of 1 − β.
inline std::vector<double> cumprod_one_minus(const std::vector<double>& betas) {
  std::vector<double> out;
  double p = 1;
  for (double b : betas) out.push_back(p *= 1 - b);
  return out;
}

inline std::vector<double> linear_betas(double start, double end, int n) {
  std::vector<double> b;
  for (int i = 0; i < n; ++i) b.push_back(start + (end - start) * i / (n - 1));
  return b;
}

// DDPM's discrete process: 1000 timesteps of linear betas.
inline Process ddpm() {
  return Process::from_json({{"type", "discrete"}, {"betas", {{"schedule", "linear"}}}}, "test");
}

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

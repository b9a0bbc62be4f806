#pragma once
// Helpers for the tests that run the CLI end to end: files, JSON configs, messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.hpp"

namespace diffode::test::cli {

namespace fs = std::filesystem;
using diffode::test::CliResult;
using diffode::test::data_path;
using diffode::test::model_path;
using diffode::test::repo;
using diffode::test::run_cli;
using diffode::test::run_shell;
using diffode::test::TempDir;
using nlohmann::json;

inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not found in:\n" << text;
}

inline std::string q(const fs::path& p) { return "'" + p.string() + "'"; }

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline fs::path write_json(const fs::path& file, const json& j) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << j.dump(2) << "\n";
  return file;
}

// Regular files anywhere under `dir`, as sorted relative paths ({} if it does not exist).
inline std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (!e.is_directory()) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

inline std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

// Every file's bytes, keyed by relative path.
inline std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& f : files_under(dir)) out[f] = read_file(dir / f);
  return out;
}

// A message for the user ("error: ..."), not an internal failure.
inline void expect_clean_error(const CliResult& r) {
  EXPECT_TRUE(Contains(r.output, "error: "));
  EXPECT_EQ(r.output.find("internal error"), std::string::npos) << r.output;
}

}  // namespace diffode::test::cli

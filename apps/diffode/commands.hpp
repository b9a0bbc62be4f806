#pragma once
// The CLI's subcommands: argument handling and printing only; the work is in diffode::core.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace diffode::cli {

struct SampleArgs {
  std::filesystem::path config;
  std::vector<std::string> sets;
  std::optional<std::filesystem::path> out;
};

int cmd_sample(const SampleArgs& args);
int cmd_info(const std::filesystem::path& model);
int cmd_solvers();
int cmd_schedules();

}  // namespace diffode::cli

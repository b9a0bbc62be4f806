#pragma once
// The CLI's subcommands: argument handling and printing only; the work is in diffode::runs.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace diffode::cli {

// The arguments of a command that runs configs: sample, compare, distill and tune.
struct ConfigArgs {
  std::vector<std::filesystem::path> configs;  // several, or one with a sweep: a batch run
  std::vector<std::string> sets;
  std::optional<std::filesystem::path> out;
  std::string shard;  // "" (whole run), "i/n", "auto" or "auto/n"
  bool resume = false;
};

int cmd_sample(const ConfigArgs& args);
int cmd_compare(const ConfigArgs& args);
int cmd_merge(const std::vector<std::filesystem::path>& dirs, const std::optional<std::filesystem::path>& out);
int cmd_info(const std::filesystem::path& model);
int cmd_distill(const ConfigArgs& args);
int cmd_tune(const ConfigArgs& args);

struct EvalArgs {
  std::filesystem::path samples;   // a run directory (samples.npy + manifest.json) or an .npy file
  std::filesystem::path features;  // feature model
  std::filesystem::path stats;     // reference statistics (eval) or the file to write (stats)
  int64_t batch_size = 250;
};
int cmd_eval(const EvalArgs& args);
int cmd_stats(const EvalArgs& args);
int cmd_solvers();
int cmd_schedules();

}  // namespace diffode::cli

// diffode: sample diffusion and flow models by solving their probability-flow ODE.
// Exit codes: 0 ok, 2 bad input (config, model, paths, numbers), 1 internal failure.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <iostream>

#include "commands.hpp"
#include "diffode/core/error.hpp"
#include "diffode/version.hpp"

int main(int argc, char** argv) {
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG and is reported, the
  // complete batches kept, instead of SIGXFSZ killing the process without a word.
  std::signal(SIGXFSZ, SIG_IGN);
  auto logger = spdlog::stderr_color_mt("diffode");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");

  CLI::App app{"diffode: sample diffusion and flow models by solving their probability-flow ODE"};
  app.set_version_flag("--version", std::string("diffode ") + diffode::kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // -v and -q also after the command
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "Log debug messages");
  app.add_flag("-q,--quiet", quiet, "Log warnings and errors only");

  // An output path given as '' is refused (it would silently mean the default folder).
  const CLI::Validator not_empty([](std::string& v) { return v.empty() ? std::string("an empty path") : std::string(); },
                                 "PATH");
  // A command that runs configs: -c CONFIG..., --set KEY=VALUE..., -o OUT (and for batch
  // runs --resume, --shard).
  auto config_command = [&app, &not_empty](const char* name, const char* help, diffode::cli::SampleArgs& args, std::string& out,
                               const char* out_help, bool batch) {
    auto* cmd = app.add_subcommand(name, help);
    cmd->add_option("-c,--config", args.configs,
                    batch ? "Config file(s) (JSON); several, or one with a \"sweep\", make a batch run" : "Config file (JSON)")
        ->required();
    cmd->add_option("--set", args.sets, "Override one config key: KEY=VALUE (VALUE as JSON, else a string)");
    cmd->add_option("-o,--out", out, out_help)->check(not_empty);
    if (batch) {
      cmd->add_flag("--resume", args.resume,
                    "Continue the run(s) in the output directory, keeping complete runs and batches; refuse if it holds "
                    "another config's run");
      cmd->add_option("--shard", args.shard,
                      "Sample only shard I of N (I/N, 0-based), by seed; auto: from SLURM_ARRAY_TASK_ID/COUNT; auto/N: "
                      "from JOB_COMPLETION_INDEX. Finish with 'diffode merge'");
    }
    return cmd;
  };
  diffode::cli::SampleArgs sample, compare, distill, tune;
  std::string out, compare_out, distill_out, tune_out;
  auto* sample_cmd = config_command("sample", "Sample from a JSON config: grid.png, samples.npy, manifest.json", sample,
                                    out, "Output directory (default: output.dir, else runs/<config name>)", true);
  auto* compare_cmd =
      config_command("compare", "Compare the config's solvers at fixed NFEs against a reference solution", compare,
                     compare_out, "Output directory (default: output.dir, else runs/<config name>)", true);
  auto* distill_cmd = config_command("distill", "Train an AMED step predictor for the config's AMED solver", distill,
                                     distill_out, "Predictor file to write (default: solver.predictor)", false);
  auto* tune_cmd = config_command("tune", "Search the sigma grid for the config's solver and NFE on its model (after GITS)",
                                  tune, tune_out, "Tuned grid file to write (JSON; schedule {\"name\": \"tuned\", \"path\": ...})",
                                  false);
  std::vector<std::filesystem::path> merge_dirs;
  std::string merge_out;
  auto* merge_cmd = app.add_subcommand("merge", "Assemble the shards of a run (from --shard) into its outputs");
  merge_cmd->add_option("dirs", merge_dirs, "Run folder holding shard-I-of-N folders, or the shard folders")->required();
  merge_cmd->add_option("-o,--out", merge_out, "Output directory (default: the run folder, when one is given)")
      ->check(not_empty);

  std::string model_path;
  auto* info_cmd = app.add_subcommand("info", "Check a TorchScript model against the contract and describe it (or an AMED predictor)");
  info_cmd->add_option("model", model_path, "Model file (.pt)")->required();

  diffode::cli::EvalArgs eval;
  auto* eval_cmd = app.add_subcommand("eval", "Fréchet distance (and class agreement) of samples to reference statistics");
  eval_cmd->add_option("samples", eval.samples, "Run directory (samples.npy, manifest.json) or an .npy file")->required();
  eval_cmd->add_option("--features", eval.features, "Feature model with features(x) (and forward(x) logits)")->required();
  eval_cmd->add_option("--stats", eval.stats, "Reference statistics (JSON)")->required();
  eval_cmd->add_option("--batch-size", eval.batch_size, "Feature batch size")->check(CLI::PositiveNumber);

  diffode::cli::EvalArgs stats;
  auto* stats_cmd = app.add_subcommand("stats", "Write reference feature statistics of an .npy array or a run");
  stats_cmd->add_option("samples", stats.samples, "Run directory or an .npy file [N, *sample_shape]")->required();
  stats_cmd->add_option("--features", stats.features, "Feature model with features(x)")->required();
  stats_cmd->add_option("-o,--out", stats.stats, "Statistics file to write (JSON)")->required()->check(not_empty);
  stats_cmd->add_option("--batch-size", stats.batch_size, "Feature batch size")->check(CLI::PositiveNumber);

  auto* solvers_cmd = app.add_subcommand("solvers", "List the solvers and their NFE rules");
  auto* schedules_cmd = app.add_subcommand("schedules", "List the sigma schedules");

  if (argc > 1 && argv[1][0] != '-') {  // a misspelled command: say which, and the nearest
    std::vector<std::string> commands;
    for (const auto* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
    if (std::find(commands.begin(), commands.end(), argv[1]) == commands.end()) {
      std::cerr << "error: " << diffode::unknown_name_message("command", argv[1], commands) << "\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "error: " << e.what() << "\n(run 'diffode --help' or 'diffode COMMAND --help')\n";
    return 2;
  }
  if (verbose) spdlog::set_level(spdlog::level::debug);
  if (quiet) spdlog::set_level(spdlog::level::warn);

  try {
    if (*sample_cmd) {
      if (!out.empty()) sample.out = out;
      return diffode::cli::cmd_sample(sample);
    }
    if (*compare_cmd) {
      if (!compare_out.empty()) compare.out = compare_out;
      return diffode::cli::cmd_compare(compare);
    }
    if (*merge_cmd)
      return diffode::cli::cmd_merge(merge_dirs, merge_out.empty() ? std::nullopt
                                                                   : std::optional<std::filesystem::path>(merge_out));
    if (*distill_cmd) {
      if (!distill_out.empty()) distill.out = distill_out;
      return diffode::cli::cmd_distill(distill);
    }
    if (*tune_cmd) {
      if (!tune_out.empty()) tune.out = tune_out;
      return diffode::cli::cmd_tune(tune);
    }
    if (*info_cmd) return diffode::cli::cmd_info(model_path);
    if (*eval_cmd) return diffode::cli::cmd_eval(eval);
    if (*stats_cmd) return diffode::cli::cmd_stats(stats);
    if (*solvers_cmd) return diffode::cli::cmd_solvers();
    if (*schedules_cmd) return diffode::cli::cmd_schedules();
  } catch (const diffode::InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const diffode::OutputError& e) {
    std::cerr << "error: " << e.what()
              << "\n(complete batches are kept: free space or fix permissions, then run the same command with --resume)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}

// diffode: sample diffusion and flow models by solving their probability-flow ODE.
// Exit codes: 0 ok, 2 bad input (config, model, paths, numbers), 1 internal failure.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "diffode/error.hpp"
#include "diffode/version.hpp"

int main(int argc, char** argv) {
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

  // A command that runs a config: -c CONFIG, --set KEY=VALUE..., -o OUT.
  auto config_command = [&app](const char* name, const char* help, diffode::cli::SampleArgs& args, std::string& out,
                               const char* out_help) {
    auto* cmd = app.add_subcommand(name, help);
    cmd->add_option("-c,--config", args.config, "Config file (JSON)")->required();
    cmd->add_option("--set", args.sets, "Override one config key: KEY=VALUE (VALUE as JSON, else a string)");
    cmd->add_option("-o,--out", out, out_help);
    return cmd;
  };
  diffode::cli::SampleArgs sample, distill;
  std::string out, distill_out;
  auto* sample_cmd = config_command("sample", "Sample from a JSON config: grid.png, samples.npy, manifest.json", sample,
                                    out, "Output directory (default: output.dir, else runs/<config name>)");
  auto* distill_cmd = config_command("distill", "Train an AMED step predictor for the config's AMED solver", distill,
                                     distill_out, "Predictor file to write (default: solver.predictor)");

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
  stats_cmd->add_option("-o,--out", stats.stats, "Statistics file to write (JSON)")->required();
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
    if (*distill_cmd) {
      if (!distill_out.empty()) distill.out = distill_out;
      return diffode::cli::cmd_distill(distill);
    }
    if (*info_cmd) return diffode::cli::cmd_info(model_path);
    if (*eval_cmd) return diffode::cli::cmd_eval(eval);
    if (*stats_cmd) return diffode::cli::cmd_stats(stats);
    if (*solvers_cmd) return diffode::cli::cmd_solvers();
    if (*schedules_cmd) return diffode::cli::cmd_schedules();
  } catch (const diffode::InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 1;
  }
  return 1;
}

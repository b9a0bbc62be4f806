// diffode: sample diffusion and flow models by solving their probability-flow ODE.
// Exit codes: 0 ok, 2 bad input (config, model, paths, numbers), 1 internal failure.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>

#include "commands.hpp"
#include "diffode/core/error.hpp"
#include "diffode/version.hpp"

namespace {

using diffode::cli::ConfigArgs;

// A subcommand and what runs it once the command line is parsed.
struct Command {
  CLI::App* cmd;
  std::function<int()> run;
};

// An output path given as '' is refused (it would silently mean the default folder).
const CLI::Validator& not_empty() {
  static const CLI::Validator v([](std::string& s) { return s.empty() ? std::string("an empty path") : std::string(); },
                                "PATH");
  return v;
}

// A command that runs configs: -c CONFIG..., --set KEY=VALUE..., -o OUT (and for batch
// runs --resume, --shard).
Command config_command(CLI::App& app, const char* name, const char* help, const char* out_help, bool batch,
                       int (*fn)(const ConfigArgs&)) {
  auto args = std::make_shared<ConfigArgs>();
  auto out = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(name, help);
  cmd->add_option("-c,--config", args->configs,
                  batch ? "Config file(s) (JSON); several, or one with a \"sweep\", make a batch run" : "Config file (JSON)")
      ->required();
  cmd->add_option("--set", args->sets, "Override one config key: KEY=VALUE (VALUE as JSON, else a string)");
  cmd->add_option("-o,--out", *out, out_help)->check(not_empty());
  if (batch) {
    cmd->add_flag("--resume", args->resume,
                  "Continue the run(s) in the output directory, keeping complete runs and batches; refuse if it holds "
                  "another config's run");
    cmd->add_option("--shard", args->shard,
                    "Sample only shard I of N (I/N, 0-based), by seed; auto: from SLURM_ARRAY_TASK_ID/COUNT; auto/N: "
                    "from JOB_COMPLETION_INDEX. Finish with 'diffode merge'");
  }
  return {cmd, [args, out, fn] {
            if (!out->empty()) args->out = *out;
            return fn(*args);
          }};
}

Command merge_command(CLI::App& app) {
  auto dirs = std::make_shared<std::vector<std::filesystem::path>>();
  auto out = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("merge", "Assemble the shards of a run (from --shard) into its outputs");
  cmd->add_option("dirs", *dirs, "Run folder holding shard-I-of-N folders, or the shard folders")->required();
  cmd->add_option("-o,--out", *out, "Output directory (default: the run folder, when one is given)")->check(not_empty());
  return {cmd, [dirs, out] {
            return diffode::cli::cmd_merge(*dirs, out->empty() ? std::nullopt
                                                                : std::optional<std::filesystem::path>(*out));
          }};
}

Command info_command(CLI::App& app) {
  auto path = std::make_shared<std::string>();
  auto* cmd =
      app.add_subcommand("info", "Check a TorchScript model against the contract and describe it (or an AMED predictor)");
  cmd->add_option("model", *path, "Model file (.pt)")->required();
  return {cmd, [path] { return diffode::cli::cmd_info(*path); }};
}

// eval (writes: false) reads statistics; stats (writes: true) writes them.
Command features_command(CLI::App& app, bool writes) {
  auto args = std::make_shared<diffode::cli::EvalArgs>();
  auto* cmd = writes ? app.add_subcommand("stats", "Write reference feature statistics of an .npy array or a run")
                     : app.add_subcommand("eval", "Fréchet distance (and class agreement) of samples to reference statistics");
  cmd->add_option("samples", args->samples,
                  writes ? "Run directory or an .npy file [N, *sample_shape]"
                         : "Run directory (samples.npy, manifest.json) or an .npy file")
      ->required();
  cmd->add_option("--features", args->features,
                  writes ? "Feature model with features(x)" : "Feature model with features(x) (and forward(x) logits)")
      ->required();
  if (writes)
    cmd->add_option("-o,--out", args->stats, "Statistics file to write (JSON)")->required()->check(not_empty());
  else
    cmd->add_option("--stats", args->stats, "Reference statistics (JSON)")->required();
  cmd->add_option("--batch-size", args->batch_size, "Feature batch size")->check(CLI::PositiveNumber);
  return {cmd, [args, writes] { return writes ? diffode::cli::cmd_stats(*args) : diffode::cli::cmd_eval(*args); }};
}

std::vector<Command> add_commands(CLI::App& app) {
  using namespace diffode::cli;
  const char* run_dir = "Output directory (default: output.dir, else runs/<config name>)";
  return {
      config_command(app, "sample", "Sample from a JSON config: grid.png, samples.npy, manifest.json", run_dir, true,
                     cmd_sample),
      config_command(app, "compare", "Compare the config's solvers at fixed NFEs against a reference solution", run_dir,
                     true, cmd_compare),
      config_command(app, "distill", "Train an AMED step predictor for the config's AMED solver",
                     "Predictor file to write (default: solver.predictor)", false, cmd_distill),
      config_command(app, "tune", "Search the sigma grid for the config's solver and NFE on its model (after GITS)",
                     "Tuned grid file to write (JSON; schedule {\"name\": \"tuned\", \"path\": ...})", false, cmd_tune),
      merge_command(app),
      info_command(app),
      features_command(app, false),
      features_command(app, true),
      {app.add_subcommand("solvers", "List the solvers and their NFE rules"), cmd_solvers},
      {app.add_subcommand("schedules", "List the sigma schedules"), cmd_schedules},
  };
}

// A misspelled command: says which, and the nearest (exit 2); 0 when argv names a command.
int refuse_unknown_command(CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return 0;
  std::vector<std::string> commands;
  for (const auto* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  if (std::find(commands.begin(), commands.end(), argv[1]) != commands.end()) return 0;
  std::cerr << "error: " << diffode::unknown_name_message("command", argv[1], commands) << "\n";
  return 2;
}

// Runs a command, turning its errors into the exit codes of DESIGN.md §6.
int run_reporting_errors(const std::function<int()>& run) {
  try {
    const int rc = run();
    // Results printed to a full or closed stdout are lost: not a success.
    if (std::cout.flush(); !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout)) {
      std::cerr << "error: cannot write to standard output; the results printed there are lost\n";
      return 1;
    }
    return rc;
  } catch (const diffode::InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const diffode::OutputError& e) {
    std::cerr << "error: " << e.what()
              << "\n(complete batches are kept: free space or fix permissions, then run the same command with --resume)\n";
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user gave that the file system refuses (a symlink loop, a deleted working
    // directory, a dangling link): bad input, in one line.
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG and is reported, the
  // complete batches kept, instead of SIGXFSZ killing the process without a word.
  std::signal(SIGXFSZ, SIG_IGN);
  spdlog::set_default_logger(spdlog::stderr_color_mt("diffode"));
  spdlog::set_pattern("[%H:%M:%S] %^%l%$ %v");

  CLI::App app{"diffode: sample diffusion and flow models by solving their probability-flow ODE"};
  app.set_version_flag("--version", std::string("diffode ") + diffode::kVersion);
  app.require_subcommand(1);
  app.fallthrough();  // -v and -q also after the command
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "Log debug messages");
  app.add_flag("-q,--quiet", quiet, "Log warnings and errors only");
  const std::vector<Command> commands = add_commands(app);

  if (const int rc = refuse_unknown_command(app, argc, argv)) return rc;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "error: " << e.what() << "\n(run 'diffode --help' or 'diffode COMMAND --help')\n";
    return 2;
  }
  if (verbose) spdlog::set_level(spdlog::level::debug);
  if (quiet) spdlog::set_level(spdlog::level::warn);
  for (const Command& c : commands)
    if (*c.cmd) return run_reporting_errors(c.run);
  return 1;
}

#pragma once
// The run config of DESIGN.md §7, typed: read strictly from JSON (unknown keys and wrong
// types are errors naming the file and JSON pointer) once, with `--set` overrides and paths
// resolved, into sections that hold resolved things (the solver's registry entry, the
// schedule). to_json(Config) writes it back with every default filled in: the run identity.
// The keys, their defaults and docs are one table per section (config.cpp, config_keys()).
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "diffode/core/error.hpp"
#include "diffode/core/json_schema.hpp"
#include "diffode/core/noise.hpp"
#include "diffode/core/schedule.hpp"
#include "diffode/core/solver.hpp"

namespace diffode {

// Where a value sits in a config, for messages.
struct Where {
  std::string source;   // the config file as given
  std::string pointer;  // JSON pointer, "" for the whole config
  Where at(const std::string& key) const { return {source, pointer + "/" + key}; }
  [[noreturn]] void fail(const std::string& detail) const { throw ConfigError(source, pointer, detail); }
};

struct ModelConfig {
  std::filesystem::path path;
  std::string device = "cpu";
  int threads = 0;                                      // intra-op threads; 0 = all cores
  std::string dtype = "float32";                        // dtype of model calls
  nlohmann::json overrides = nlohmann::json::object();  // metadata keys (DESIGN.md §5)
};

// The analytical first step (DESIGN.md §4): none, the zero-mean rule, or the data mean μ_y.
enum class Afs { off, plain, mean };

// How an AMED solver takes a last interval into σ = 0 (DESIGN.md §4): as its base solver's
// step there (no interior point), or learned, with the mean-value point s = (1 − r)·σ_i.
enum class LastInterval { base, learned };

struct SolverConfig {
  const SolverInfo* solver = &find_solver("heun");
  std::optional<int> steps;  // at most one of steps / nfe; neither: the planner's default
  std::optional<int> nfe;
  std::optional<Afs> afs;  // unset: off, unless a target nfe needs it (then plain)
  std::optional<Space> space;  // unset: the default for the process and solver (default_space)
  std::string precision = "float64";  // dtype of the solver state
  int max_order = 0;                  // 0: the solver's default
  std::optional<std::filesystem::path> predictor;  // AMED solvers: the distilled step predictor
  std::optional<LastInterval> last_interval;        // AMED solvers; unset: base
  bool learned_last() const { return last_interval == LastInterval::learned; }
  const char* last_interval_name() const { return learned_last() ? "learned" : "base"; }
  const SolverInfo& info() const { return *solver; }
  at::ScalarType state_dtype() const;  // of `precision`
  // The planner's AFS choice: fixed by `afs`, or free (unset).
  std::optional<bool> afs_choice() const {
    return afs ? std::optional<bool>(*afs != Afs::off) : std::nullopt;
  }
};

// The variable the solver integrates in when `space` is unset: the flow's own time for a
// training-free solver that takes it on a flow model (measured better, README), else σ̃.
Space default_space(const SolverInfo& solver, const Process& process);
// The solver config's space for the process; ConfigError at `where` (the solver section)
// for "time" with a solver that cannot take it.
Space resolve_space(const SolverConfig& s, const Process& process, const Where& where);
// `path` with every "{nfe}" replaced by the NFE (per-NFE predictor and tuned-grid files).
std::string with_nfe(std::string path, int nfe);

const char* space_name(Space s);

// AMED predictor distillation (`diffode distill`, DESIGN.md §4).
struct DistillConfig {
  const SolverInfo* teacher = &find_solver("heun");  // a training-free solver on the refined grid
  int teacher_points = 1;         // M: extra teacher points inside each student interval
  int64_t trajectories = 2048;    // training trajectories (seeds seed .. seed + trajectories - 1)
  int64_t validation = 256;       // held-out trajectories after those, for the best-so-far choice
  int64_t batch_size = 64;
  int64_t iterations = 300;       // optimizer steps in all (a re-run continues up to this)
  int64_t eval_every = 25;        // validate (and keep the best) every this many iterations
  double lr = 5e-3;               // Adam
  int64_t seed = 1000000000;      // far from the sampling seeds, so evaluation seeds stay unseen
  double scale_dir = 0.05;        // c ∈ [1 − scale_dir, 1 + scale_dir]
  double scale_time = 0.05;       // a ∈ [1 − scale_time, 1 + scale_time]
  // The loss: each interval's squared distance to the teacher at σ̃_{i+1}, in x̃ or (normalize)
  // in x̃/√(1 + σ̃²) (the data's scale at every σ̃), the last interval weighted last_weight.
  bool normalize = false;
  double last_weight = 1.0;
};

// The schedule and its parameters (a ScheduleSpec, DESIGN.md §3), and denoise_to_zero.
struct ScheduleConfig : ScheduleSpec {
  // The grid's last point when set (the published AMED plans end at 0.002 on models that
  // reach 0); unset: model.sigma_min. Within the model's sigma range.
  std::optional<double> sigma_min;
  bool denoise_to_zero = false;
  std::filesystem::path path;  // tuned: the file `diffode tune` wrote (its grid is in `sigmas`)
  nlohmann::json tuned;        // tuned: that file's record, checked against the run (check_tuned)
};

// `diffode tune` (DESIGN.md §3): the grid search.
struct TuneConfig {
  int points = 32;                // K: the candidate grid is the schedule at K steps
  int64_t trajectories = 256;     // teacher trajectories (seeds seed .. seed + trajectories - 1)
  int64_t seed = 2000000000;      // far from the sampling and distillation seeds
  const SolverInfo* teacher = &find_solver("dpmpp3m");  // training-free, on the candidates
  int teacher_points = 2;         // M: extra teacher points inside each candidate interval
  // Trajectories whose end error refines the DP's grid (0: none); unset: min(128, trajectories).
  std::optional<int64_t> refine;
};

struct SamplingConfig {
  int64_t num_samples = 64;
  int64_t batch_size = 64;
  int64_t seed = 0;
  Labels labels;          // class labels per sample (DESIGN.md §6)
  double guidance = 1.0;  // classifier-free guidance w: D = D_null + w (D_class - D_null); 1 = none
};

// Quality measures computed on the samples (FD and class agreement, quality.hpp).
struct EvalConfig {
  std::filesystem::path features;  // a feature model with features(x)
  std::filesystem::path stats;     // its reference statistics (JSON)
};

// One solver of `diffode compare`: a solver section without steps/nfe, and a label.
struct ComparedSolver {
  std::optional<std::string> label;  // unset: the solver's name
  SolverConfig solver;
  // Its own schedule section (null: the config's); "{nfe}" in a tuned path becomes the cell's
  // NFE, so it is read per cell (compare_schedule).
  nlohmann::json schedule;
  std::string name() const { return label ? *label : solver.info().name; }
};

struct ReferenceConfig {
  const SolverInfo* solver = &find_solver("dpmpp3m");
  int steps = 200;          // checked against half as many steps
  double tolerance = 0.01;  // RMSE between the two above which the reference is refused
};

// `diffode compare`: solvers side by side at fixed NFEs against a reference solution.
struct CompareConfig {
  std::vector<ComparedSolver> solvers;
  std::vector<int> nfe;  // target NFEs; each cell uses the largest reachable NFE <= target
  ReferenceConfig reference;
  int grid_samples = 8;  // columns of compare_grid.png
};

struct OutputConfig {
  std::optional<std::filesystem::path> dir;  // unset: runs/<config name> in the working directory
  int grid_cols = 8;
  int grid_max = 256;  // at most this many samples tiled into grid.png
  bool png = false;    // samples/<seed>.png
  bool npy = true;     // samples.npy
};

struct Config {
  std::string source;  // the config file as given, for messages
  ModelConfig model;
  SolverConfig solver;
  ScheduleConfig schedule;
  SamplingConfig sampling;
  DistillConfig distill;
  std::optional<TuneConfig> tune;
  std::optional<EvalConfig> eval;
  std::optional<CompareConfig> compare;
  OutputConfig output;
};

// The config with every default filled in (paths absolute): the run's identity.
nlohmann::json to_json(const Config& c);
nlohmann::json to_json(const SolverConfig& s);
nlohmann::json to_json(const Labels& l);      // null when none
nlohmann::json to_json(const DistillConfig& d);
nlohmann::json to_json(const TuneConfig& t);

// A compared solver's schedule for a cell at `nfe` (its own, "{nfe}" replaced, or the
// config's); `where` is the compared solver's pointer for messages.
ScheduleConfig compare_schedule(const Config& cfg, const ComparedSolver& s, int nfe, const std::string& where);

// Every config key as "section.key" with its kind, default and doc (the one table).
const std::vector<KeyInfo>& config_keys();

// Reads `file`, applies `sets` ("solver.name=heun"; value parsed as JSON, else a string),
// resolves relative paths (from the file: against its folder; from --set: against the
// working directory) and validates. Throws InputError naming file, pointer and problem.
Config load_config(const std::filesystem::path& file, const std::vector<std::string>& sets = {});

// One run of a batch: a config file, or one point of its "sweep" (an object of
// "key.path": [values...], expanded as a cartesian product, the last key fastest).
struct NamedConfig {
  std::string name;      // unique in the set: the file's stem (several files) and the swept values
  nlohmann::json sweep;  // the swept keys and their values in this run ({} without a sweep)
  Config config;
};
// The runs of several config files (each with or without a sweep), `sets` applied to all.
// Bad sweeps (unknown key, empty list, a value of the wrong type) name /sweep/KEY[/i].
std::vector<NamedConfig> load_run_set(const std::vector<std::filesystem::path>& files,
                                      const std::vector<std::string>& sets = {});

// The same from JSON already in memory (a run record read from disk); `base_dir` resolves
// relative paths in it.
Config parse_config(nlohmann::json j, const std::string& source, const std::filesystem::path& base_dir,
                    const std::vector<std::string>& sets = {});

}  // namespace diffode

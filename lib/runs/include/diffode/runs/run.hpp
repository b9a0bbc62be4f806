#pragma once
// Runs with outputs on disk (DESIGN.md §8): `sample` (batches streamed to disk, resumable,
// sharded by seed, merged bit for bit) and batch runs of several configs or a sweep, with
// an index. `compare` (solvers × NFE against a cached reference) is in compare.hpp.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "diffode/runs/config.hpp"

namespace diffode {

// Reports progress of a run: steps done out of total, samples done.
using ProgressFn = std::function<void(int64_t steps_done, int64_t steps_total, int64_t samples_done)>;

// Shards of one run at most: far above any cluster, and far below where an index or count
// would overflow the batch arithmetic.
constexpr int kMaxShards = 1 << 20;

// One of `count` parts of a run's samples; count 1 is the whole run.
struct Shard {
  int index = 0;
  int count = 1;
};
// The folder of shard i of n inside a run directory: "shard-<i>-of-<n>".
std::string shard_dir_name(const Shard& shard);
// The shard folders (shard-*) directly inside `dir`, sorted; none when it holds none.
std::vector<std::filesystem::path> shard_dirs_in(const std::filesystem::path& dir);

struct RunOptions {
  Shard shard;          // count > 1: sample only this shard's batches, into out_dir/shard-i-of-n
  bool resume = false;  // continue what out_dir holds; refuse if it holds another config's run
  ProgressFn progress;  // may be empty
};

// `diffode sample`: samples the config batch by batch into out_dir/parts (each batch file
// written whole or not at all), then writes samples.npy, grid.png, samples/<seed>.png,
// manifest.json (all determined by the config: byte-identical however the run was split,
// interrupted or resumed) and timings.json. Complete batches of the same config found in
// out_dir are kept; a complete run is returned as is. A lock refuses a second writer.
// Returns the manifest (a shard: its shard.json).
nlohmann::json run_sample(const Config& cfg, const std::filesystem::path& out_dir, const RunOptions& opt = {});

// `diffode merge`: the shards found in `dirs` (shard folders, or run folders holding
// shard-*-of-*) finished into out_dir exactly as one machine would have. InputError naming
// what is missing, incomplete or from another config.
nlohmann::json merge_shards(const std::vector<std::filesystem::path>& dirs, const std::filesystem::path& out_dir);

// Several runs (configs or sweep points): each into root/<name>, with index.csv and
// index.json in root updated after every run. `run` is run_sample, or run_compare with its
// result as JSON (compare.json).
// InputError unless `name` (a run's folder name, from its config file's name) names a
// folder of its own inside the output folder: not empty, ".", ".." or holding a '/'.
void check_run_folder_name(const std::string& name, const std::string& source);

using RunFn = std::function<nlohmann::json(const Config&, const std::filesystem::path&, const RunOptions&)>;
nlohmann::json run_batch(const std::vector<NamedConfig>& runs, const std::filesystem::path& root, const RunFn& run,
                         const RunOptions& opt);

}  // namespace diffode

// Shards of a run (sample --shard I/N) merged into the run's outputs (DESIGN.md §8).
#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>

#include "assemble.hpp"
#include "clock.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/model.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/json_file.hpp"
#include "diffode/runs/run.hpp"
#include "run_dir.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<fs::path> shard_dirs_in(const fs::path& dir) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && e.path().filename().string().rfind("shard-", 0) == 0) found.push_back(e.path());
  std::sort(found.begin(), found.end());
  return found;
}

namespace {

// Every shard folder named, directly or as shard-*-of-* inside a run folder.
std::vector<fs::path> shard_folders(const std::vector<fs::path>& dirs) {
  std::vector<fs::path> shard_dirs;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) throw InputError("merge: " + d.string() + " is not a directory");
    if (fs::exists(d / "shard.json") || fs::exists(d / "parts")) {
      shard_dirs.push_back(d);
      continue;
    }
    const std::vector<fs::path> found = shard_dirs_in(d);
    if (found.empty()) throw InputError("merge: " + d.string() + " holds no shards (shard-I-of-N folders from --shard)");
    shard_dirs.insert(shard_dirs.end(), found.begin(), found.end());
  }
  return shard_dirs;
}

// One shard folder's record (shard.json), checked to be whole and to match its batch files.
json read_shard_record(const fs::path& d) {
  const json s = read_json_file(d / "shard.json");
  if (!s.is_object())
    throw InputError("merge: " + d.string() + " is incomplete (no shard.json: its sampling did not finish); re-run "
                     "that shard with --resume");
  if (!is_shard_record(s)) throw InputError("merge: " + (d / "shard.json").string() + ": not a shard record written by diffode");
  if (read_json_file(d / "parts" / "run.json") != s["run"])
    throw InputError("merge: " + d.string() + ": its batch files belong to another run than its shard.json (it was "
                     "re-run with another config); re-run that shard");
  // As written (an int64 read into int would wrap: 2^40 read as "shard 0 of 0"), then bounded
  // as --shard is (a count of 2147483647 had merge look for that many folders).
  const int64_t idx = s["shard"]["index"].get<int64_t>(), n = s["shard"]["count"].get<int64_t>();
  if (n < 1 || n > kMaxShards || idx < 0 || idx >= n)
    throw InputError("merge: " + (d / "shard.json").string() + ": shard " + std::to_string(idx) + " of " +
                     std::to_string(n) + " is out of range (1 to " + std::to_string(kMaxShards) + " shards)");
  return s;
}

// The shards of one run, each locked while it is merged, by index; all of them present.
struct ShardSet {
  json run;
  int count = 0;
  std::map<int, std::pair<fs::path, json>> shards;
  std::vector<std::unique_ptr<DirLock>> locks;  // no shard may change while it is merged
};
ShardSet read_shards(const std::vector<fs::path>& shard_dirs) {
  ShardSet set;
  fs::path run_from;
  std::vector<fs::path> seen;
  for (const auto& d : shard_dirs) {
    const fs::path canonical = fs::weakly_canonical(d);
    if (std::find(seen.begin(), seen.end(), canonical) != seen.end())
      throw InputError("merge: shard folder " + d.string() + " is given twice");
    seen.push_back(canonical);
    set.locks.push_back(std::make_unique<DirLock>(d));
    const json s = read_shard_record(d);
    const int idx = s["shard"]["index"].get<int>(), n = s["shard"]["count"].get<int>();
    if (set.run.is_null()) {
      set.run = s["run"];
      run_from = d;
      set.count = n;
    } else if (s["run"] != set.run) {
      throw InputError("merge: " + d.string() + " and " + run_from.string() + " come from different runs: " +
                       first_difference(set.run, s["run"]));
    } else if (n != set.count) {
      throw InputError("merge: " + d.string() + " is one of " + std::to_string(n) + " shards, " + run_from.string() +
                       " one of " + std::to_string(set.count));
    }
    if (set.shards.count(idx))
      throw InputError("merge: shard " + std::to_string(idx) + " of " + std::to_string(n) + " is given twice: " +
                       set.shards[idx].first.string() + " and " + d.string());
    set.shards[idx] = {d, s};
  }
  std::string missing;
  for (int i = 0; i < set.count; ++i)
    if (!set.shards.count(i)) missing += (missing.empty() ? "" : ", ") + std::to_string(i);
  if (!missing.empty())
    throw InputError("merge: shards missing: " + missing + " of " + std::to_string(set.count) + " (expected folders " +
                     shard_dir_name({std::stoi(missing.substr(0, missing.find(','))), set.count}) + " ...)");
  return set;
}

// The batch files of every shard, in sample order, each checked to be whole.
std::vector<fs::path> shard_batch_files(const ShardSet& set, const Config& cfg) {
  const int64_t n = cfg.sampling.num_samples, batch = cfg.sampling.batch_size;
  const std::string digest = run_digest(set.run);
  std::vector<fs::path> files;
  for (const auto& [idx, entry] : set.shards) {
    const auto& [d, s] = entry;
    for (int64_t b = s["batches"]["first"].get<int64_t>(); b < s["batches"]["last"].get<int64_t>(); ++b) {
      const int64_t first = b * batch;
      const fs::path f = d / "parts" / part_name(first);
      if (!part_complete(f, first, std::min(batch, n - first), set.run["model"]["metadata"]["sample_shape"], digest))
        throw InputError("merge: " + d.string() + ": batch file " + f.filename().string() +
                         " is missing, truncated or not this run's (its check digests differ); re-run that shard");
      files.push_back(f);
    }
  }
  return files;
}

}  // namespace

json merge_shards(const std::vector<fs::path>& dirs, const fs::path& out_dir) {
  const auto t_start = Clock::now();
  set_threads(0);
  c10::InferenceMode inference;
  const ShardSet set = read_shards(shard_folders(dirs));
  const Config cfg = parse_config(set.run["config"], "merge", "/");  // the run's config, from its shards' record
  SampleForm form;
  try {
    form = form_of(set.run.at("model").at("metadata"));
  } catch (const json::exception&) {
    throw InputError("merge: " + set.shards.begin()->second.first.string() +
                     "/shard.json: /run/model/metadata: not the sample shape and data range diffode writes");
  }
  const std::vector<fs::path> files = shard_batch_files(set, cfg);
  json shard_timings = json::array();
  for (const auto& [idx, entry] : set.shards) shard_timings.push_back(entry.second["timings"]);
  CreatedDirs created;
  check_writable_dir(out_dir, created);
  const DirLock lock(out_dir);
  check_own_folder(out_dir, FolderKind::run);
  remove_stale_temporaries(out_dir);
  const json manifest = finish_run(cfg, set.run, form, files, out_dir, load_evaluation(cfg, form.shape));
  write_file_atomic(out_dir / "timings.json",
                    json({{"shards", shard_timings}, {"merge_s", seconds_since(t_start)}}).dump(2) + "\n");
  created.keep();
  spdlog::info("merged {} shards ({} samples) -> {}", set.count, cfg.sampling.num_samples, out_dir.string());
  return manifest;
}

}  // namespace diffode

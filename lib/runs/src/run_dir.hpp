#pragma once
// A run directory's housekeeping (internal to diffode::runs): its lock, the names of the
// files in it, folders made for a run, the write check, and the batch files of an
// unfinished run (parts/); the cache folder.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace diffode {

// Holds `dir`/.lock (flock) while alive, so two processes never write one run directory:
// a second one gets an InputError naming the holder's pid. The lock ends with the process
// even when it is killed; the file is removed when the holder lets go.
class DirLock {
 public:
  explicit DirLock(const std::filesystem::path& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// `text` with every character but letters, digits, '.', '+' and '-' replaced by '_'.
std::string safe_file_name(const std::string& text);

// A JSON value as one CSV field: strings bare, null empty, quoted when it holds , " or a newline.
std::string csv_field(const nlohmann::json& v);

// Where diffode caches teacher trajectories and reference solutions: $DIFFODE_CACHE,
// else $XDG_CACHE_HOME/diffode, else ~/.cache/diffode.
std::filesystem::path cache_dir();

// Folders a run creates; those still empty are removed unless the run finishes (keep()).
class CreatedDirs {
 public:
  void create(const std::filesystem::path& dir);
  void keep() { created_.clear(); }
  ~CreatedDirs();

 private:
  std::vector<std::filesystem::path> created_;
};

// Creates `dir` if needed and checks a file can be written there (InputError if not).
void check_writable_dir(const std::filesystem::path& dir, CreatedDirs& created);

// "<pointer>: <value in a> vs <value in b>" for the first place where two JSON values differ.
std::string first_difference(const nlohmann::json& a, const nlohmann::json& b);

// The batch files of a run in dir/parts, with parts/run.json naming the run they belong to.
// A different run's parts are removed (with resume: refused, as is a different complete run,
// which otherwise stays until retire_finished_run).
// A batch file is the .npy of its samples followed by a trailer that binds it to its run and
// its place: "diffode-batch <run digest> <data digest>\n", the first 32 hex digits of the
// sha256 of the run identity and of "<first>:" + the float32 data. A batch from another run
// or seed, moved to another index, or overwritten with other values fails the check.
class RunParts {
 public:
  RunParts(const std::filesystem::path& dir, const nlohmann::json& run, bool resume);
  // Whether the batch of samples first..first+count-1 is on disk, whole and this run's.
  bool complete(int64_t first, int64_t count) const;
  // Writes the batch starting at sample `first` (float32 [count, *shape]), whole or not at all.
  void write(int64_t first, const at::Tensor& samples) const;
  std::filesystem::path file(int64_t first) const;

 private:
  std::filesystem::path dir_;
  nlohmann::json shape_;
  std::string run_digest_;
  std::set<std::string> present_;  // batch file names in parts/ when the run started (one listing)
};

std::string part_name(int64_t first);
std::string run_digest(const nlohmann::json& run);
// Whether `file` is the whole batch of samples first..first+count-1 of the run with that digest.
bool part_complete(const std::filesystem::path& file, int64_t first, int64_t count, const nlohmann::json& shape,
                   const std::string& run_digest);
// Removes the files diffode writes in dir/parts, then the folder when nothing else is in it.
void remove_parts(const std::filesystem::path& dir);
// Removes temporaries diffode's own outputs leave when a process is killed while writing
// them ("<output>.tmp-<pid>-<n>" in dir and dir/samples): call with dir locked.
void remove_stale_temporaries(const std::filesystem::path& dir);
// Removes the outputs of a finished run (or shard) of another config than `run` in dir:
// called once this run's batches are complete, so a run that fails leaves the old one whole.
void retire_finished_run(const std::filesystem::path& dir, const nlohmann::json& run);

// ---- what diffode reads back is input too (DESIGN.md §8, "Whose folder")

// Whether `name` (relative to a run folder) is one a manifest may list: samples.npy,
// grid.png or samples/<integer>.png; never "..", an absolute path or another name.
bool is_listed_output(const std::string& name);
// InputError "<where>: /<field>: ..." unless `m` is a manifest as diffode writes it: an
// object with run (object), seeds {first, count} (integers), labels (integers), files
// (names is_listed_output accepts) and quality (null or an object).
void check_manifest(const nlohmann::json& m, const std::string& where);
bool is_manifest(const nlohmann::json& m);
// Whether `s` is a shard record as diffode writes it (run, shard {index, count}, batches
// {first, last, batch_size}, all integers, index in [0, count)).
bool is_shard_record(const nlohmann::json& s);

// The kinds of folder diffode writes into, each with its own file names.
enum class FolderKind {
  run,      // sample (one machine or a shard) and merge: samples.npy, grid.png, manifest.json, ...
  compare,  // compare.json, compare.csv, compare_grid.png, error_vs_nfe.*, cells/
  batch,    // a batch run's root: index.json, index.csv and one folder per run
};
// Refuses (InputError naming it) the first thing in `dir` diffode would write over or into
// that it did not write: one of its folders (parts/, samples/, cells/, shard-I-of-N/) that is
// a symbolic link or not a folder, one of this kind's file names that no diffode record there
// accounts for (a manifest, shard or parts/run.json record for a run; compare.json; index.json),
// a parts/ file under diffode's names without its trailer, a manifest that is not one
// (check_manifest). Other files are left alone. Call with dir locked, before writing into it.
void check_own_folder(const std::filesystem::path& dir, FolderKind kind);

}  // namespace diffode

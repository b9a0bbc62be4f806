// Batch runs: several configs or the points of a sweep, one directory each, with an index.
#include <spdlog/spdlog.h>

#include <sstream>

#include "diffode/core/denoiser.hpp"
#include "diffode/core/error.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/runs/run.hpp"
#include "run_dir.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One index row: the run, where it is, what was swept, and its headline numbers.
json index_row(const NamedConfig& r, const json& result) {
  json row = {{"run", r.name}, {"dir", r.name}, {"config", r.config.source}, {"sweep", r.sweep}};
  if (result.contains("cells")) {  // a comparison
    row["cells"] = result["cells"].size();
    return row;
  }
  const json& run = result.value("run", json::object());
  row["solver"] = run.value("/solver/name"_json_pointer, json());
  row["nfe"] = run.value("nfe", json());
  row["samples"] = result.value("/seeds/count"_json_pointer, json());
  row["frechet_distance"] = result.value("/quality/frechet_distance"_json_pointer, json());
  return row;
}

void write_index(const fs::path& root, const json& rows) {
  write_file_atomic(root / "index.json", rows.dump(2) + "\n");
  std::vector<std::string> sweep_keys;
  for (const auto& row : rows)
    for (auto it = row["sweep"].begin(); it != row["sweep"].end(); ++it)
      if (std::find(sweep_keys.begin(), sweep_keys.end(), it.key()) == sweep_keys.end()) sweep_keys.push_back(it.key());
  const std::vector<std::string> cols = {"run", "dir", "config", "solver", "nfe", "samples", "frechet_distance", "cells"};
  std::ostringstream csv;
  for (size_t i = 0; i < cols.size(); ++i) csv << (i ? "," : "") << cols[i];
  for (const auto& k : sweep_keys) csv << "," << csv_field(k);
  csv << "\n";
  for (const auto& row : rows) {
    for (size_t i = 0; i < cols.size(); ++i) csv << (i ? "," : "") << csv_field(row.value(cols[i], json()));
    for (const auto& k : sweep_keys) csv << "," << csv_field(row["sweep"].value(k, json()));
    csv << "\n";
  }
  write_file_atomic(root / "index.csv", csv.str());
}

}  // namespace

void check_run_folder_name(const std::string& name, const std::string& source) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos)
    throw InputError(source + ": its run folder would be named '" + name +
                     "', which names no folder of its own; rename the config file");
}

json run_batch(const std::vector<NamedConfig>& runs, const fs::path& root, const RunFn& run, const RunOptions& opt) {
  CreatedDirs created;  // removed again if still empty at the end (a refusal by the first run)
  for (const auto& r : runs) check_run_folder_name(r.name, r.config.source);
  check_writable_dir(root, created);
  check_own_folder(root, FolderKind::batch);
  json rows = json::array();
  for (size_t i = 0; i < runs.size(); ++i) {
    spdlog::info("run {} of {}: {}", i + 1, runs.size(), runs[i].name);
    const json result = run(runs[i].config, root / runs[i].name, opt);
    if (opt.shard.count > 1) continue;  // shards are indexed when merged
    rows.push_back(index_row(runs[i], result));
    write_index(root, rows);
  }
  return rows;
}

}  // namespace diffode

#pragma once
// The outputs of a finished run (internal to diffode::runs): samples.npy,
// samples/<seed>.png, grid.png, the quality numbers and manifest.json, assembled from the
// run's complete batch files by `sample` and by `merge`.
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "diffode/core/model_meta.hpp"
#include "diffode/runs/config.hpp"
#include "diffode/runs/sampler.hpp"

namespace diffode {

// What the outputs need of the model's metadata.
struct SampleForm {
  std::vector<int64_t> shape;
  double lo, hi;  // data range
  int64_t num_classes;
};
SampleForm form_of(const ModelMeta& m);
// The same from a run record's "model"/"metadata" (a shard's, for merge).
SampleForm form_of(const nlohmann::json& meta);

// The finished outputs of a run from its complete parts: samples.npy, samples/<seed>.png,
// grid.png, manifest.json. Everything written depends only on the config (`run` is its
// identity) and the parts' bytes, so one machine, shards and resumed runs give the same files.
nlohmann::json finish_run(const Config& cfg, const nlohmann::json& run, const SampleForm& form,
                          const std::vector<std::filesystem::path>& part_files, const std::filesystem::path& out_dir,
                          const std::optional<Evaluation>& eval);

// True if out_dir holds a complete run whose identity equals `run`.
bool run_complete(const std::filesystem::path& out_dir, const nlohmann::json& run);

}  // namespace diffode

#include "assemble.hpp"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include "diffode/core/quality.hpp"
#include "diffode/io/atomic_file.hpp"
#include "diffode/io/json_file.hpp"
#include "diffode/io/npy.hpp"
#include "diffode/io/png.hpp"
#include "images.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

SampleForm form_of(const ModelMeta& m) { return {m.sample_shape, m.data_lo, m.data_hi, m.num_classes}; }

SampleForm form_of(const json& meta) {
  return {meta["sample_shape"].get<std::vector<int64_t>>(), meta["data_range"][0].get<double>(),
          meta["data_range"][1].get<double>(), meta.value("num_classes", int64_t{0})};
}

json finish_run(const Config& cfg, const json& run, const SampleForm& form, const std::vector<fs::path>& part_files,
                const fs::path& out_dir, const std::optional<Evaluation>& eval) {
  const std::vector<int64_t>& shape = form.shape;
  const double lo = form.lo, hi = form.hi;
  const int64_t num_classes = form.num_classes;
  const int64_t n = cfg.sampling.num_samples, seed = cfg.sampling.seed;
  const std::vector<int64_t> labels = run_labels(cfg, num_classes, shape, 0, n);

  std::optional<QualityMeter> meter;
  if (eval) meter.emplace(eval->features);
  std::vector<int64_t> npy_shape = {n};
  npy_shape.insert(npy_shape.end(), shape.begin(), shape.end());
  std::optional<AtomicFile> npy;
  if (cfg.output.npy) {
    npy.emplace(out_dir / "samples.npy");
    npy->write(npy_header(npy_shape));
  }
  if (cfg.output.png) fs::create_directories(out_dir / "samples");
  std::vector<Image> tiles;
  std::vector<float> points;
  std::vector<std::string> files;
  int64_t k = 0;
  for (const auto& file : part_files) {
    const NpyArray part = read_npy(file);
    const int64_t count = part.shape.at(0);
    std::vector<int64_t> part_shape = part.shape;
    const Tensor x = at::from_blob(const_cast<float*>(part.data.data()), part_shape, at::kFloat);
    if (meter)
      meter->add(x, labels.empty() ? labels : std::vector<int64_t>(labels.begin() + k, labels.begin() + k + count),
                 num_classes);
    if (npy) npy->write(part.data.data(), part.data.size() * sizeof(float));
    for (int64_t i = 0; i < count; ++i, ++k) {
      if (is_point_shape(shape)) {
        points.insert(points.end(), part.data.begin() + 2 * i, part.data.begin() + 2 * i + 2);
        continue;
      }
      if (!is_image_shape(shape)) continue;
      if (static_cast<int64_t>(tiles.size()) >= cfg.output.grid_max && !cfg.output.png) continue;
      Image img = to_image(x[i], lo, hi);
      if (cfg.output.png) write_file_atomic(out_dir / ("samples/" + std::to_string(seed + k) + ".png"), encode_png(img));
      if (static_cast<int64_t>(tiles.size()) < cfg.output.grid_max) tiles.push_back(std::move(img));
    }
  }
  if (k != n) throw std::logic_error("finish_run: parts hold " + std::to_string(k) + " samples, expected " + std::to_string(n));
  if (npy) {
    npy->commit();
    files.push_back("samples.npy");
  }
  if (cfg.output.png)
    for (int64_t i = 0; i < n; ++i) files.push_back("samples/" + std::to_string(seed + i) + ".png");
  if (!tiles.empty() || !points.empty()) {
    const Image grid = points.empty() ? tile(tiles, cfg.output.grid_cols) : scatter(points, lo, hi);
    write_file_atomic(out_dir / "grid.png", encode_png(grid, "diffode", run.dump()));
    files.push_back("grid.png");
  } else {
    spdlog::info("sample shape {} is neither an image nor a 2-D point: no grid.png", json(shape).dump());
  }
  json quality = nullptr;
  if (meter) {
    const double fd = frechet_distance(meter->stats(), eval->reference.stats);
    const auto agreement = meter->class_agreement();
    quality = {{"frechet_distance", fd},
               {"class_agreement", agreement ? json(*agreement) : json(nullptr)},
               {"samples", meter->count()},
               {"feature_model", {{"path", cfg.eval->features.string()}, {"sha256", eval->features.sha256()}}},
               {"reference_stats", cfg.eval->stats.string()}};
    spdlog::info("Fréchet distance {:.4f} over {} samples{}", fd, meter->count(),
                 agreement ? fmt::format(", class agreement {:.1f}%", 100 * *agreement) : "");
  }
  json manifest = {
      {"run", run},
      {"seeds", {{"first", seed}, {"count", n}, {"rule", "sample k uses seed first + k"}}},
      {"labels", labels},
      {"files", files},
      {"quality", quality},
  };
  write_file_atomic(out_dir / "manifest.json", manifest.dump(2) + "\n");
  return manifest;
}

bool run_complete(const fs::path& out_dir, const json& run) {
  const json m = read_json_file(out_dir / "manifest.json");
  if (!m.is_object() || !m.contains("run") || m["run"] != run || !m.contains("files")) return false;
  std::error_code ec;
  for (const auto& f : m["files"])
    if (!f.is_string() || !fs::exists(out_dir / f.get<std::string>(), ec)) return false;
  return true;
}

}  // namespace diffode

#include "diffode/sampler.hpp"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <thread>

#include "diffode/amed.hpp"
#include "diffode/error.hpp"
#include "diffode/io.hpp"
#include "diffode/model.hpp"
#include "diffode/quality.hpp"
#include "diffode/version.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

Tensor integrate(const SolverInfo& solver, Denoiser& den, const Tensor& eps, const Grid& grid,
                 const SolverOptions& opt, bool denoise_to_zero, const StepCallback& on_step) {
  Tensor x;
  if (std::isinf(grid.front())) {
    // x̃ = D + (σ'/σ)(x̃ − D) → D(ε, inf) + σ' ε as σ → inf; AFS takes D ≈ 0 there.
    x = opt.afs ? eps * grid[1] : den.denoise(eps, grid[0]).add_(eps, grid[1]);
    on_step(0, x);
    if (grid.size() > 2) {
      SolverOptions rest = opt;
      rest.afs = false;
      x = solver.fn(den, std::move(x), Grid(grid.begin() + 1, grid.end()), rest,
                    [&on_step](int i, const Tensor& xi) { on_step(i + 1, xi); });
    }
  } else {
    x = solver.fn(den, eps * grid[0], grid, opt, on_step);
  }
  if (denoise_to_zero) x = den.denoise(x, grid.back());
  return x;
}

namespace {
// Counts denoiser calls; returns D = 0.
class CountingDenoiser final : public Denoiser {
 public:
  Tensor denoise(const Tensor& x, double) override {
    ++calls;
    return at::zeros_like(x);
  }
  Tensor denoise(const Tensor& x, const Tensor&) override {
    ++calls;
    return at::zeros_like(x);
  }
  int calls = 0;
};
}  // namespace

int count_nfe(const SolverInfo& solver, const Grid& grid, const SolverOptions& opt, bool denoise_to_zero) {
  CountingDenoiser den;
  // The NFE of an AMED solver does not depend on what its predictor says.
  const FixedStep midpoint;
  SolverOptions counting = opt;
  if (solver.learned && !counting.predictor) counting.predictor = &midpoint;
  integrate(solver, den, at::ones({1}, at::kDouble), grid, counting, denoise_to_zero);
  return den.calls;
}

StepPlan plan_steps(const SolverInfo& solver, const ScheduleSpec& schedule, const SigmaRange& range,
                    std::optional<int> steps, std::optional<int> nfe, std::optional<bool> afs, int max_order,
                    bool denoise_to_zero) {
  auto plan_for = [&](int n, bool with_afs) {
    StepPlan p{n, 0, with_afs, make_grid(schedule, n, range)};
    p.nfe = count_nfe(solver, p.grid, SolverOptions{with_afs, max_order}, denoise_to_zero);
    return p;
  };
  if (!nfe) return plan_for(steps.value_or(fixed_steps(schedule).value_or(18)), afs.value_or(false));

  const int target = *nfe;
  std::vector<bool> afs_choices = afs ? std::vector<bool>{*afs} : std::vector<bool>{false, true};
  std::vector<std::string> reachable;
  for (bool with_afs : afs_choices) {
    if (auto fixed = fixed_steps(schedule)) {
      StepPlan p = plan_for(*fixed, with_afs);
      if (p.nfe == target) return p;
      reachable.push_back(std::to_string(p.nfe) + " (" + std::to_string(*fixed) + " steps" +
                          (with_afs ? ", afs" : "") + ")");
      continue;
    }
    // NFE grows strictly with the number of steps: bisect for the step count.
    int lo = 1, hi = target + 1;
    StepPlan below{0, -1, with_afs, {}}, above{0, -1, with_afs, {}};
    while (lo <= hi) {
      const int mid = (lo + hi) / 2;
      StepPlan p = plan_for(mid, with_afs);
      if (p.nfe == target) return p;
      if (p.nfe < target) {
        below = p;
        lo = mid + 1;
      } else {
        above = p;
        hi = mid - 1;
      }
    }
    for (const StepPlan* p : {&below, &above})
      if (p->nfe >= 0)
        reachable.push_back(std::to_string(p->nfe) + " (" + std::to_string(p->steps) + " steps" +
                            (with_afs ? ", afs" : "") + ")");
  }
  std::string msg = "solver '" + solver.name + "' cannot use exactly " + std::to_string(target) +
                    " model evaluations on this schedule (" + solver.nfe_rule + ")";
  if (!reachable.empty()) {
    msg += "; nearest reachable:";
    for (size_t i = 0; i < reachable.size(); ++i) msg += (i ? ", " : " ") + reachable[i];
  }
  throw InputError(msg);
}

Tensor make_noise(int64_t seed, int64_t first, int64_t count, const std::vector<int64_t>& shape) {
  std::vector<int64_t> full = {count};
  full.insert(full.end(), shape.begin(), shape.end());
  Tensor out = at::empty(full, at::kFloat);
  at::Generator gen = at::detail::createCPUGenerator();
  for (int64_t k = 0; k < count; ++k) {
    gen.set_current_seed(static_cast<uint64_t>(seed + first + k));  // = torch.manual_seed(seed + k)
    out[k].normal_(0.0, 1.0, gen);  // = torch.randn(shape): row k is contiguous, of that shape
  }
  return out;
}

std::vector<int64_t> sample_labels(const SamplingConfig& s, int64_t num_classes, const std::vector<int64_t>& shape,
                                   int64_t first, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t k = first; k < first + count; ++k) {
    if (s.labels == "list") {
      out.push_back(s.label_list[static_cast<size_t>(k) % s.label_list.size()]);
    } else if (s.labels == "cycle") {
      out.push_back(k % num_classes);
    } else if (s.labels == "random") {
      at::Generator gen = at::detail::createCPUGenerator(static_cast<uint64_t>(s.seed + k));
      at::randn(shape, gen, at::kFloat);  // the sample's noise comes first in its stream
      out.push_back(at::randint(num_classes, {1}, gen).item<int64_t>());
    }
  }
  return out;
}

int set_threads(int n) {
  const int threads = n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return threads;
}

// ---------------------------------------------------------------- the sample run

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// An [C,H,W] sample in the data range -> 8-bit image (C = 1 gray, 3 RGB, else channel 0).
Image to_image(const Tensor& sample, double lo, double hi) {
  Tensor s = sample.dim() == 2 ? sample.unsqueeze(0) : sample;
  if (s.size(0) != 1 && s.size(0) != 3) s = s.slice(0, 0, 1);
  const Tensor u8 = ((s.to(at::kFloat) - lo) * (255.0 / (hi - lo))).round_().clamp_(0, 255).to(at::kByte)
                        .permute({1, 2, 0}).contiguous();
  Image img{static_cast<int>(s.size(2)), static_cast<int>(s.size(1)), static_cast<int>(s.size(0)), {}};
  img.pixels.assign(u8.data_ptr<uint8_t>(), u8.data_ptr<uint8_t>() + u8.numel());
  return img;
}

bool is_image_shape(const std::vector<int64_t>& shape) { return shape.size() == 3 || shape.size() == 2; }
bool is_point_shape(const std::vector<int64_t>& shape) { return shape.size() == 1 && shape[0] == 2; }

// Images tiled in rows of `cols`, 2 px apart.
Image tile(const std::vector<Image>& tiles, int cols) {
  const int pad = 2, n = static_cast<int>(tiles.size());
  cols = std::min(cols, n);
  const int rows = (n + cols - 1) / cols, w = tiles[0].width, h = tiles[0].height, c = tiles[0].channels;
  Image g{pad + cols * (w + pad), pad + rows * (h + pad), c, {}};
  g.pixels.assign(static_cast<size_t>(g.width) * g.height * c, 255);
  for (int k = 0; k < n; ++k) {
    const int x0 = pad + (k % cols) * (w + pad), y0 = pad + (k / cols) * (h + pad);
    for (int y = 0; y < h; ++y)
      std::copy_n(&tiles[k].pixels[static_cast<size_t>(y) * w * c], w * c,
                  &g.pixels[(static_cast<size_t>(y0 + y) * g.width + x0) * c]);
  }
  return g;
}

// 2-D samples as a scatter plot over the data range box.
Image scatter(const std::vector<float>& xy, double lo, double hi) {
  const int size = 512;
  Image img{size, size, 3, std::vector<uint8_t>(size * size * 3, 255)};
  for (int k = 0; k < size; ++k)  // axes through the origin, if inside the box
    for (int axis = 0; axis < 2; ++axis) {
      const int zero = static_cast<int>(std::lround((0 - lo) / (hi - lo) * (size - 1)));
      if (zero < 0 || zero >= size) continue;
      const int px = axis ? zero : k, py = axis ? k : size - 1 - zero;
      for (int ch = 0; ch < 3; ++ch) img.pixels[(static_cast<size_t>(py) * size + px) * 3 + ch] = 215;
    }
  for (size_t i = 0; i + 1 < xy.size(); i += 2) {
    const long px = std::lround((xy[i] - lo) / (hi - lo) * (size - 1));
    const long py = size - 1 - std::lround((xy[i + 1] - lo) / (hi - lo) * (size - 1));
    for (long dy = -1; dy <= 1; ++dy)
      for (long dx = -1; dx <= 1; ++dx) {
        const long x = px + dx, y = py + dy;
        if (x < 0 || y < 0 || x >= size || y >= size) continue;
        uint8_t* p = &img.pixels[(static_cast<size_t>(y) * size + static_cast<size_t>(x)) * 3];
        p[0] = 31;
        p[1] = 84;
        p[2] = 160;
      }
  }
  return img;
}

std::string json_number_text(double v) { return std::isinf(v) ? "inf" : json(v).dump(); }

// Folders a run creates; those still empty are removed unless the run finishes (keep()).
class CreatedDirs {
 public:
  void create(const fs::path& dir) {
    if (!fs::exists(dir)) created_.push_back(dir);
    fs::create_directories(dir);
  }
  void keep() { created_.clear(); }
  ~CreatedDirs() {
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      std::error_code ec;
      if (fs::is_empty(*it, ec)) fs::remove(*it, ec);
    }
  }

 private:
  std::vector<fs::path> created_;
};

void check_writable_dir(const fs::path& dir, CreatedDirs& created) {
  try {
    created.create(dir);
  } catch (const fs::filesystem_error& e) {
    throw InputError("output directory " + dir.string() + ": cannot be created: " + e.code().message());
  }
  if (!fs::is_directory(dir))
    throw InputError("output directory " + dir.string() + ": cannot be created: a file of that name exists");
  try {
    AtomicFile probe(dir / ".write-test");
    probe.write("ok");
  } catch (const std::exception& e) {
    throw InputError("output directory " + dir.string() + ": cannot be written: " + e.what());
  }
}

// True if out_dir holds a complete run whose identity equals `run`.
bool run_complete(const fs::path& out_dir, const json& run) {
  std::error_code ec;
  const fs::path mpath = out_dir / "manifest.json";
  if (!fs::exists(mpath, ec)) return false;
  std::ifstream in(mpath);
  json m = json::parse(in, nullptr, false);
  if (m.is_discarded() || !m.contains("run") || m["run"] != run || !m.contains("files")) return false;
  for (const auto& f : m["files"])
    if (!f.is_string() || !fs::exists(out_dir / f.get<std::string>(), ec)) return false;
  return true;
}

}  // namespace

// Labels and guidance against what the model offers (DESIGN.md §5, §6).
void check_conditioning(const Config& cfg, const Model& model) {
  const SamplingConfig& sc = cfg.sampling;
  const ModelMeta& meta = model.meta();
  const std::string where = cfg.source + ": /sampling/";
  if (!sc.labels.empty() && meta.num_classes == 0)
    throw InputError(where + "labels: model " + model.path().string() + " is not class-conditional (num_classes 0)");
  for (size_t i = 0; i < sc.label_list.size(); ++i) {
    const int64_t y = sc.label_list[i];
    if (y < 0 || y > meta.num_classes || (y == meta.num_classes && !meta.null_class))
      throw InputError(where + "labels/" + std::to_string(i) + ": label " + std::to_string(y) + " is outside [0, " +
                       std::to_string(meta.num_classes - 1) + "]" +
                       (meta.null_class ? " (or " + std::to_string(meta.num_classes) + ", the null class)" : ""));
  }
  if (sc.guidance == 1.0) return;
  if (!meta.null_class)
    throw InputError(where + "guidance: model " + model.path().string() +
                     " has no null class (metadata null_class), so it cannot be guided; use guidance 1");
  if (sc.labels.empty()) throw InputError(where + "guidance: guidance needs class labels (sampling.labels)");
}

StepPlan plan_run(const Config& cfg, const ModelMeta& meta) {
  const SolverInfo& solver = find_solver(cfg.solver.name);
  const SigmaRange range{meta.sigma_min, meta.sigma_max, meta.process};
  StepPlan plan;
  try {
    plan = plan_steps(solver, cfg.schedule.spec, range, cfg.solver.steps, cfg.solver.nfe, cfg.solver.afs,
                      cfg.solver.max_order, cfg.schedule.denoise_to_zero);
  } catch (const InputError& e) {
    throw InputError(cfg.source + ": " + (cfg.solver.nfe ? "/solver/nfe" : "/schedule") + ": " + e.what());
  }
  if (cfg.schedule.denoise_to_zero && plan.grid.back() == 0)
    throw InputError(cfg.source + ": /schedule/denoise_to_zero: the grid already ends at sigma 0");
  return plan;
}

std::optional<AmedPredictor> load_run_predictor(const Config& cfg, const Model& model, const StepPlan& plan) {
  const SolverInfo& solver = find_solver(cfg.solver.name);
  if (!solver.learned) return std::nullopt;
  if (!cfg.solver.predictor)
    throw InputError(cfg.source + ": /solver/predictor: solver '" + solver.name +
                     "' needs a step predictor file; distill one with 'diffode distill -c " + cfg.source + "'");
  AmedPredictor p = AmedPredictor::load(*cfg.solver.predictor);
  const PredictorUse use{model.sha256(), solver.name, plan.steps, plan.afs, plan.grid,
                         model.has_features() ? model.feature_dim() : 1};
  check_predictor(p, *cfg.solver.predictor, use);
  if (!model.has_features())
    spdlog::warn("model {} has no forward_with_features: the AMED predictor sees zero features (a fixed step "
                 "schedule)", model.path().filename().string());
  return p;
}

json run_sample(const Config& cfg, const fs::path& out_dir, const ProgressFn& progress) {
  const auto t_start = Clock::now();
  const int threads = set_threads(cfg.model.threads);
  c10::InferenceMode inference;

  const Model model = Model::load({cfg.model.path, cfg.model.device, cfg.model.dtype, cfg.model.overrides,
                                   cfg.source + ": /model"});
  const ModelMeta& meta = model.meta();
  const double load_s = seconds_since(t_start);
  const SolverInfo& solver = find_solver(cfg.solver.name);
  const StepPlan plan = plan_run(cfg, meta);
  const std::optional<AmedPredictor> predictor = load_run_predictor(cfg, model, plan);
  const SolverOptions opt{plan.afs, cfg.solver.max_order, predictor ? &*predictor : nullptr};
  const SamplingConfig& sc = cfg.sampling;
  check_conditioning(cfg, model);
  const auto state_dtype = cfg.solver.precision == "float64" ? at::kDouble : at::kFloat;

  std::optional<FeatureModel> feature_model;
  std::optional<ReferenceStats> reference;
  if (cfg.eval) {
    feature_model = FeatureModel::load(cfg.eval->features, meta.sample_shape, cfg.model.device);
    reference = load_reference_stats(cfg.eval->stats);
    check_reference(*feature_model, *reference, cfg.eval->stats.string() + " (" + cfg.source + ": /eval)");
  }
  std::optional<QualityMeter> meter;
  if (feature_model) meter.emplace(*feature_model);

  // What determines the outputs: written into manifest.json and grid.png.
  json grid_json = json::array();
  for (double s : plan.grid) grid_json.push_back(std::isinf(s) ? json("inf") : json(s));
  json run = {
      {"diffode_version", kVersion},
      {"config", cfg.json},
      {"model", {{"path", model.path().string()}, {"sha256", model.sha256()}, {"metadata", meta.json}}},
      {"solver",
       {{"name", solver.name}, {"steps", plan.steps}, {"nfe", plan.nfe}, {"afs", plan.afs},
        {"precision", cfg.solver.precision}, {"max_order", cfg.solver.max_order},
        {"predictor", cfg.solver.predictor ? json({{"path", cfg.solver.predictor->string()},
                                                   {"sha256", sha256_file(*cfg.solver.predictor)}})
                                           : json(nullptr)}}},
      {"schedule",
       {{"name", cfg.schedule.spec.name}, {"sigmas", grid_json}, {"denoise_to_zero", cfg.schedule.denoise_to_zero}}},
      {"nfe", plan.nfe},
      {"network_passes_per_sample", plan.nfe * (sc.guidance != 1.0 ? 2 : 1)},
  };
  if (cfg.schedule.spec.rho) run["schedule"]["rho"] = *cfg.schedule.spec.rho;

  CreatedDirs created;
  check_writable_dir(out_dir, created);
  if (run_complete(out_dir, run)) {
    spdlog::info("{} already holds this run, complete: nothing to do", out_dir.string());
    std::ifstream in(out_dir / "manifest.json");
    return json::parse(in);
  }
  spdlog::info("model {} ({}, {} prediction, process {}), sample shape {}", model.path().filename().string(),
               model.sha256().substr(0, 12), meta.prediction, meta.process.name(), json(meta.sample_shape).dump());
  spdlog::info("solver {} with {} steps = {} NFE{}, schedule {} from sigma {} to {}, {} threads", solver.name,
               plan.steps, plan.nfe, plan.afs ? " (afs)" : "", cfg.schedule.spec.name,
               json_number_text(plan.grid.front()), json_number_text(plan.grid.back()), threads);

  const int64_t n = cfg.sampling.num_samples, batch = cfg.sampling.batch_size;
  std::vector<int64_t> out_shape = {n};
  out_shape.insert(out_shape.end(), meta.sample_shape.begin(), meta.sample_shape.end());
  std::optional<AtomicFile> npy;
  if (cfg.output.npy) {
    npy.emplace(out_dir / "samples.npy");
    npy->write(npy_header(out_shape));
  }
  if (cfg.output.png) created.create(out_dir / "samples");

  ModelDenoiser den(model, state_dtype);
  std::vector<int64_t> labels;
  std::vector<Image> tiles;
  std::vector<float> points;
  std::vector<std::string> files;
  const int64_t steps_total = static_cast<int64_t>(plan.steps) * ((n + batch - 1) / batch);
  int64_t steps_done = 0;
  const auto t_sample = Clock::now();
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min(batch, n - first);
    const Tensor eps = make_noise(cfg.sampling.seed, first, count, meta.sample_shape)
                           .to(at::TensorOptions().dtype(state_dtype).device(model.device()));
    den.reset();
    const std::vector<int64_t> batch_labels = sample_labels(sc, meta.num_classes, meta.sample_shape, first, count);
    labels.insert(labels.end(), batch_labels.begin(), batch_labels.end());
    den.set_condition(batch_labels.empty() ? Tensor() : at::tensor(batch_labels, at::kLong).to(model.device()),
                      sc.guidance);
    const Tensor x = integrate(solver, den, eps, plan.grid, opt, cfg.schedule.denoise_to_zero, [&](int, const Tensor&) {
      ++steps_done;
      if (progress) progress(steps_done, steps_total, first);
    });
    den.check_finite(plan.grid);
    const Tensor out = x.to(at::TensorOptions().dtype(at::kFloat).device(at::kCPU)).contiguous();
    if (meter) meter->add(out, batch_labels, meta.num_classes);
    if (npy) npy->write(out.data_ptr<float>(), static_cast<size_t>(out.numel()) * sizeof(float));
    for (int64_t k = 0; k < count; ++k) {
      const int64_t seed = cfg.sampling.seed + first + k;
      if (is_point_shape(meta.sample_shape)) {
        const float* xy = out.data_ptr<float>() + 2 * k;
        points.insert(points.end(), xy, xy + 2);
        continue;
      }
      if (!is_image_shape(meta.sample_shape)) continue;
      if (static_cast<int64_t>(tiles.size()) < cfg.output.grid_max || cfg.output.png) {
        Image img = to_image(out[k], meta.data_lo, meta.data_hi);
        if (cfg.output.png) {
          const std::string name = "samples/" + std::to_string(seed) + ".png";
          write_file_atomic(out_dir / name, encode_png(img));
        }
        if (static_cast<int64_t>(tiles.size()) < cfg.output.grid_max) tiles.push_back(std::move(img));
      }
    }
    if (progress) progress(steps_done, steps_total, first + count);
    spdlog::debug("batch of {} done ({} of {} samples)", count, first + count, n);
  }
  const double sample_s = seconds_since(t_sample);

  if (npy) {
    npy->commit();
    files.push_back("samples.npy");
  }
  if (cfg.output.png)
    for (int64_t k = 0; k < n; ++k) files.push_back("samples/" + std::to_string(cfg.sampling.seed + k) + ".png");
  const std::string run_text = run.dump();
  if (!tiles.empty() || !points.empty()) {
    const Image grid = points.empty() ? tile(tiles, cfg.output.grid_cols) : scatter(points, meta.data_lo, meta.data_hi);
    write_file_atomic(out_dir / "grid.png", encode_png(grid, "diffode", run_text));
    files.push_back("grid.png");
  } else {
    spdlog::info("sample shape {} is neither an image nor a 2-D point: no grid.png", json(meta.sample_shape).dump());
  }

  json quality = nullptr;
  if (meter) {
    const double fd = frechet_distance(meter->stats(), reference->stats);
    const auto agreement = meter->class_agreement();
    quality = {{"frechet_distance", fd},
               {"class_agreement", agreement ? json(*agreement) : json(nullptr)},
               {"samples", meter->count()},
               {"feature_model", {{"path", cfg.eval->features.string()}, {"sha256", feature_model->sha256()}}},
               {"reference_stats", cfg.eval->stats.string()}};
    spdlog::info("Fréchet distance {:.4f} over {} samples{}", fd, meter->count(),
                 agreement ? fmt::format(", class agreement {:.1f}%", 100 * *agreement) : "");
  }
  json manifest = {
      {"run", run},
      {"seeds", {{"first", cfg.sampling.seed}, {"count", n}, {"rule", "sample k uses seed first + k"}}},
      {"labels", labels},
      {"files", files},
      {"quality", quality},
      {"timings",
       {{"load_s", load_s},
        {"sample_s", sample_s},
        {"samples_per_s", static_cast<double>(n) / sample_s},
        {"total_s", seconds_since(t_start)},
        {"threads", threads}}},
  };
  write_file_atomic(out_dir / "manifest.json", manifest.dump(2) + "\n");
  created.keep();
  spdlog::info("{} samples in {:.2f} s ({:.1f}/s) -> {}", n, sample_s, n / sample_s, out_dir.string());
  return manifest;
}

}  // namespace diffode

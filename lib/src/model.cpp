#include "diffode/model.hpp"

#include <torch/cuda.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <spdlog/spdlog.h>
#include <torch/script.h>

#include <ATen/Parallel.h>

#include <cmath>
#include <thread>
#include <optional>
#include <limits>
#include <sstream>

#include "diffode/error.hpp"
#include "diffode/io.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

const std::vector<KeyInfo>& model_metadata_keys() {
  static const std::vector<KeyInfo> k = {
      {"prediction", Kind::String, nullptr, "what the network outputs: x0, eps, v or velocity"},
      {"process", Kind::Object, nullptr, "the noise process {type: edm|vp|flow|discrete, ...}", false,
       {{"type", Kind::String, nullptr, "edm, vp, flow or discrete", true},
        {"beta_min", Kind::Number, nullptr, "vp: beta_min"},
        {"beta_max", Kind::Number, nullptr, "vp: beta_max"},
        {"shift", Kind::Number, nullptr, "flow: grids are shifted, sigma' = shift * sigma (default 1)"},
        {"alphas_cumprod", Kind::NumberList, nullptr, "discrete: alpha-bar of each trained timestep"},
        {"betas", Kind::Object, nullptr, "discrete: a named beta schedule {schedule, start, end, steps}", false,
         {{"schedule", Kind::String, nullptr, "linear, scaled_linear or cosine", true},
          {"start", Kind::Number, nullptr, "first beta (linear, scaled_linear)"},
          {"end", Kind::Number, nullptr, "last beta (linear, scaled_linear)"},
          {"steps", Kind::Int, nullptr, "trained timesteps (default 1000)"}}},
        {"quantize", Kind::Bool, nullptr, "discrete: call the network at the nearest trained timestep"},
        {"time_scale", Kind::Number, nullptr, "the network is called with t * time_scale (default 1)"}}},
      {"sample_shape", Kind::IntList, nullptr, "shape of one sample"},
      {"data_range", Kind::NumberList, nullptr, "[lo, hi] of the data"},
      {"sigma_min", Kind::Number, nullptr, "smallest sigma of the grids"},
      {"sigma_max", Kind::NumberOrInf, nullptr, "largest sigma of the grids (\"inf\": a flow from t = 1)"},
      {"num_classes", Kind::Int, nullptr, "classes of a conditional model (0: unconditional)"},
      {"null_class", Kind::Bool, nullptr, "y = num_classes means no class (guidance)"},
      {"description", Kind::String, nullptr, "free text"},
  };
  return k;
}

void validate_model_metadata(const json& meta, const std::string& where, bool allow_extra_keys) {
  check_object(meta, model_metadata_keys(), where, "", allow_extra_keys);
}

int set_threads(int n) {
  const int threads = n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return threads;
}

namespace {
constexpr size_t kMaxDescription = 4096;

// " (sigma from a to b)" for a discrete process, whose σ̃ range is its table's; "" otherwise.
std::string process_range(const Process& p) {
  return p.timesteps() == 0 ? "" : " (its table spans sigma " + p.sigma_span() + ")";
}
}  // namespace

namespace {

// What the network outputs -> x̂0 (DESIGN.md §2), given x_t and, at model time t,
// a = α, s = σ, da = α', ds = σ': doubles, or per-sample tensors broadcast over x_t.
template <class C>
using X0Fn = at::Tensor (*)(const at::Tensor& o, const at::Tensor& x_t, const C& a, const C& s, const C& da,
                            const C& ds);

struct Prediction {
  std::string name;
  bool finite_at_pure_noise;  // x̂0 defined where α = 0 (a flow model at t = 1)
  X0Fn<double> x0;
  X0Fn<at::Tensor> x0_per_sample;
};

// One generic formula -> both instantiations.
template <class F>
Prediction make_prediction(const char* name, bool finite_at_pure_noise, F f) {
  return {name, finite_at_pure_noise, static_cast<X0Fn<double>>(f), static_cast<X0Fn<at::Tensor>>(f)};
}

const std::vector<Prediction>& predictions() {
  using T = at::Tensor;
  static const std::vector<Prediction> p = {
      make_prediction("x0", true, [](const T& o, const T&, const auto&, const auto&, const auto&, const auto&) {
        return o;
      }),
      make_prediction("eps", false,
                      [](const T& o, const T& x_t, const auto& a, const auto& s, const auto&, const auto&) {
                        return (x_t - o * s) / a;
                      }),
      make_prediction("v", true,
                      [](const T& o, const T& x_t, const auto& a, const auto& s, const auto&, const auto&) {
                        return (x_t * a - o * s) / (a * a + s * s);
                      }),
      make_prediction("velocity", true,
                      [](const T& o, const T& x_t, const auto& a, const auto& s, const auto& da, const auto& ds) {
                        return (x_t * ds - o * s) / (ds * a - s * da);
                      }),
  };
  return p;
}

const Prediction& find_prediction(const std::string& name, const std::string& where) {
  for (const auto& p : predictions())
    if (p.name == name) return p;
  throw InputError(where + ": " + unknown_name_message("prediction", name, prediction_names()));
}

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw InputError(unknown_name_message("dtype", name, {"float32", "float64", "float16", "bfloat16"}));
}

std::string shape_text(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  return o.str() + "]";
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

// The last non-empty line of a LibTorch error (TorchScript's own traceback comes first).
std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of(" \n");
  if (end == std::string::npos) return text;
  const size_t newline = text.rfind('\n', end);
  const size_t begin = newline == std::string::npos ? 0 : newline + 1;
  return text.substr(begin, end + 1 - begin);
}

}  // namespace

std::vector<std::string> prediction_names() {
  std::vector<std::string> out;
  for (const auto& p : predictions()) out.push_back(p.name);
  return out;
}

struct Model::Impl {
  torch::jit::Module module;
  fs::path path;
  std::string sha256;
  json archive_meta = json::object();
  ModelMeta meta;
  const Prediction* prediction = nullptr;
  at::ScalarType dtype = at::kFloat;
  c10::Device device = c10::kCPU;
  int64_t feature_dim = 0;  // > 0: forward_with_features exists and was probed
};

namespace {
// TorchScript's profiling executor spends a module's first two calls profiling and
// re-optimising it for the input shapes: 54 + 14 ms on gmm2d at 4096, 125 + 37 ms on
// fmnist_exact at 64, against 3 + 1 and 51 + 20 ms unoptimised. On CPU, with no fuser, the
// optimised graph is no faster once warm and its outputs are the same bits (README,
// Performance), so every call of a CPU module runs it as scripted; CUDA modules keep the
// optimiser (and its fusers). The setting is thread-local and restored after the call.
class AsScriptedOnCpu {
 public:
  explicit AsScriptedOnCpu(c10::Device device) {
    if (device.is_cpu()) guard_.emplace(false);
  }

 private:
  std::optional<torch::jit::GraphOptimizerEnabledGuard> guard_;
};

// [B, C, H, W] (or any [B, C, ...]) -> mean over C, flattened; [B, F] as it is.
at::Tensor reduce_feature(const at::Tensor& f) {
  if (f.dim() <= 2) return f.reshape({f.size(0), -1});
  return f.mean(1).flatten(1);
}
}  // namespace

namespace {

// Merges archive metadata and overrides into ModelMeta, checking every value.
ModelMeta resolve_meta(const json& archive, const json& overrides, const std::string& file,
                       const std::string& where) {
  json merged = archive;
  for (auto it = overrides.begin(); it != overrides.end(); ++it) merged[it.key()] = it.value();
  ModelMeta m;
  auto origin = [&](const char* key) {
    return overrides.contains(key) ? where + "/" + key : file + ": diffode.json /" + key;
  };
  auto need = [&](const char* key) {
    if (!merged.contains(key))
      throw InputError("model " + file + ": metadata has no '" + key + "' (no diffode.json in the archive, or it " +
                       "lacks the key): set model." + key + " in the config");
  };
  need("prediction");
  need("process");
  need("sample_shape");
  m.prediction = merged["prediction"].get<std::string>();
  find_prediction(m.prediction, origin("prediction"));
  m.process = Process::from_json(merged["process"], origin("process"));
  m.sample_shape = merged["sample_shape"].get<std::vector<int64_t>>();
  if (m.sample_shape.empty())
    throw InputError(origin("sample_shape") + ": must list at least one dimension");
  for (auto d : m.sample_shape)
    if (d < 1) throw InputError(origin("sample_shape") + ": dimensions must be >= 1, got " + merged["sample_shape"].dump());
  if (merged.contains("data_range")) {
    const auto r = merged["data_range"].get<std::vector<double>>();
    if (r.size() != 2 || !(r[0] < r[1]))
      throw InputError(origin("data_range") + ": expected [lo, hi] with lo < hi, got " + merged["data_range"].dump());
    m.data_lo = r[0];
    m.data_hi = r[1];
  }
  m.sigma_min = merged.contains("sigma_min") ? merged["sigma_min"].get<double>() : m.process.sigma_tilde(m.process.t_min());
  m.sigma_max = !merged.contains("sigma_max")      ? m.process.sigma_tilde(m.process.t_max())
                : merged["sigma_max"].is_string() ? std::numeric_limits<double>::infinity()  // "inf"
                                                  : merged["sigma_max"].get<double>();
  if (!(m.sigma_min >= 0))
    throw InputError(origin("sigma_min") + ": must be >= 0, got " + std::to_string(m.sigma_min));
  if (!(m.sigma_min < m.sigma_max))
    throw InputError((overrides.contains("sigma_min") || !overrides.contains("sigma_max") ? origin("sigma_min")
                                                                                          : origin("sigma_max")) +
                     ": need sigma_min < sigma_max, got sigma_min " + std::to_string(m.sigma_min) + ", sigma_max " +
                     std::to_string(m.sigma_max));
  const double t_hi = m.process.time_of(m.sigma_max);
  if (!std::isfinite(t_hi))
    throw InputError(origin("sigma_max") + ": sigma_max " + std::to_string(m.sigma_max) + " is beyond process '" +
                     m.process.name() + "'" + process_range(m.process));
  if (m.sigma_min > 0 && !std::isfinite(m.process.time_of(m.sigma_min)))
    throw InputError(origin("sigma_min") + ": sigma_min " + std::to_string(m.sigma_min) + " is beyond process '" +
                     m.process.name() + "'" + process_range(m.process) + " (0 is allowed: a grid ending at 0 never "
                     "calls the model there)");
  if (m.process.timesteps() > 0 && m.prediction == "velocity")
    throw InputError(origin("prediction") + ": a discrete process takes eps, v or x0 predictions, not 'velocity' "
                     "(a derivative in the timestep index is not what such networks output)");
  if (std::isinf(m.sigma_max) && !find_prediction(m.prediction, origin("prediction")).finite_at_pure_noise)
    throw InputError(origin("prediction") + ": a '" + m.prediction + "' model has no x0 estimate at pure noise " +
                     "(sigma_max = inf): set model.sigma_max to a finite value");
  m.num_classes = merged.value("num_classes", int64_t{0});
  if (m.num_classes < 0) throw InputError(origin("num_classes") + ": must be >= 0");
  m.null_class = merged.value("null_class", false);
  if (m.null_class && m.num_classes == 0)
    throw InputError(origin("null_class") + ": a null class needs num_classes > 0");
  // Free text, copied into every record of a run (manifest, parts/run.json, grid.png): cut
  // to kMaxDescription characters there, so a huge one cannot multiply into the outputs.
  m.description = text_excerpt(merged.value("description", std::string()), kMaxDescription);
  m.json = merged;
  if (merged.contains("description")) m.json["description"] = m.description;
  m.json["process"] = m.process.to_json();
  m.json["data_range"] = {m.data_lo, m.data_hi};
  m.json["sigma_min"] = m.sigma_min;
  m.json["sigma_max"] = std::isinf(m.sigma_max) ? json("inf") : json(m.sigma_max);
  m.json["num_classes"] = m.num_classes;
  m.json["null_class"] = m.null_class;
  return m;
}

}  // namespace

namespace {

// Reads a TorchScript archive and its diffode.json (checked, extra keys allowed).
torch::jit::Module read_archive(const fs::path& path, c10::Device device, json& metadata,
                                json* predictor = nullptr) {
  const std::string file = path.string();
  if (const std::string problem = input_file_problem(path); !problem.empty())
    throw InputError("model " + text_excerpt(file) + ": " + problem +
                     (problem == "is a directory" ? ", not a TorchScript file" : ""));
  torch::jit::ExtraFilesMap extra{{"diffode.json", ""}, {"diffode_predictor.json", ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(file, device, extra);
  } catch (const c10::Error& e) {
    throw InputError("model " + file + ": not a loadable TorchScript archive: " + first_line(e.what_without_backtrace()));
  }
  metadata = json::object();
  if (predictor && !extra["diffode_predictor.json"].empty())
    *predictor = parse_json_text(extra["diffode_predictor.json"], "predictor " + file + ": diffode_predictor.json");
  if (!extra["diffode.json"].empty()) {
    metadata = parse_json_text(extra["diffode.json"], "model " + file + ": diffode.json");
    validate_model_metadata(metadata, "model " + file + ": diffode.json", true);
  }
  return module;
}

std::vector<std::string> method_names(const torch::jit::Module& module) {
  std::vector<std::string> out;
  for (const auto& m : module.get_methods()) out.push_back(m.name());
  return out;
}

}  // namespace

ArchiveInfo inspect_archive(const fs::path& path) {
  ArchiveInfo info;
  const torch::jit::Module module = read_archive(path, c10::kCPU, info.metadata, &info.predictor);
  info.sha256 = sha256_file(path);
  info.methods = method_names(module);
  for (const char* key : {"prediction", "process", "sample_shape"})
    if (!info.metadata.contains(key)) info.missing.push_back(key);
  return info;
}

namespace {

// An exception's message, without LibTorch's backtrace.
std::string error_text(const std::exception& e) {
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

// The contract check at load: one call on a batch of 2 at mid-range time.
struct Probe {
  torch::jit::Module& module;
  const ModelMeta& meta;
  at::TensorOptions opts;
  std::string file;
  std::vector<int64_t> shape() const {  // 2 x sample_shape
    std::vector<int64_t> s = {2};
    s.insert(s.end(), meta.sample_shape.begin(), meta.sample_shape.end());
    return s;
  }
  double t_mid() const {  // the network's time argument there
    const Process& p = meta.process;
    const double lo = std::max(meta.sigma_min, p.timesteps() > 0 ? p.sigma_tilde(p.t_min()) : 0.0);
    return p.network_time(p.time_of(std::sqrt(std::max(lo, 1e-3) * std::min(meta.sigma_max, 80.0))));
  }
};

// forward(x, t[, y]): its arguments, and an output of x's shape and a floating dtype.
void probe_forward(const Probe& p) {
  const std::string& file = p.file;
  auto fwd = p.module.find_method("forward");
  if (!fwd) throw InputError("model " + file + ": has no forward method");
  const auto& args = fwd->function().getSchema().arguments();  // self, x, t[, y]
  const bool conditional = p.meta.num_classes > 0;
  if (args.size() < 3 || (conditional && args.size() < 4))
    throw InputError("model " + file + ": forward takes " + std::to_string(args.size() - 1) +
                     " argument(s), but the contract is " + (conditional ? "forward(x, t, y) for a model with num_classes > 0"
                                                                        : "forward(x, t)"));
  if (!conditional && args.size() > 3 && !args[3].default_value())
    throw InputError("model " + file + ": forward needs a third argument '" + args[3].name() +
                     "' (class labels?): set num_classes (model.num_classes) for a class-conditional model");
  const std::vector<int64_t> shape = p.shape();
  c10::IValue out;
  try {
    at::NoGradGuard guard;  // not InferenceMode: a module that caches tensors on its first call must be usable with autograd (AMED distillation)
    std::vector<c10::IValue> inputs = {at::randn(shape, p.opts), at::full({2}, p.t_mid(), p.opts)};
    if (conditional)  // class 0 and, where there is one, the null class
      inputs.emplace_back(at::tensor({int64_t{0}, p.meta.null_class ? p.meta.num_classes : int64_t{0}},
                                     at::TensorOptions().dtype(at::kLong).device(p.opts.device())));
    const AsScriptedOnCpu scripted(p.opts.device());
    out = p.module.forward(inputs);
  } catch (const std::exception& e) {
    const std::string what = error_text(e);
    throw InputError("model " + file + ": forward(x, t" + (conditional ? ", y" : "") +
                     ") failed on a probe batch x of shape " + shape_text(shape) + " (2 x sample_shape), t of shape [2]" +
                     (conditional ? ", y of shape [2]" : "") + ": " + last_line(what));
  }
  if (!out.isTensor())
    throw InputError("model " + file + ": forward(x, t) must return a Tensor, got " + out.tagKind());
  const at::Tensor o = out.toTensor();
  if (o.sizes() != at::IntArrayRef(shape))
    throw InputError("model " + file + ": forward(x, t) returned shape " + shape_text(o.sizes()) + " for x of shape " +
                     shape_text(shape) + " (2 x sample_shape; it must return the shape of x)");
  if (!at::isFloatingType(o.scalar_type()))
    throw InputError("model " + file + ": forward(x, t) returned dtype " + std::string(c10::toString(o.scalar_type())) +
                     ", expected a floating-point tensor");
}

// forward_with_features(x, t[, y]) -> (output, feature): the width of the reduced feature.
int64_t probe_features(const Probe& p) {
  const std::string& file = p.file;
  const bool conditional = p.meta.num_classes > 0;
  const std::vector<int64_t> shape = p.shape();
  const std::string call = std::string("forward_with_features(x, t") + (conditional ? ", y" : "") + ")";
  c10::IValue fo;
  try {
    at::NoGradGuard guard;  // as in probe_forward
    std::vector<c10::IValue> inputs = {at::randn(shape, p.opts), at::full({2}, p.t_mid(), p.opts)};
    if (conditional) inputs.emplace_back(at::zeros({2}, at::TensorOptions().dtype(at::kLong).device(p.opts.device())));
    const AsScriptedOnCpu scripted(p.opts.device());
    fo = p.module.get_method("forward_with_features")(inputs);
  } catch (const std::exception& e) {
    const std::string what = error_text(e);
    throw InputError("model " + file + ": " + call + " failed on a probe batch: " + last_line(what));
  }
  if (!fo.isTuple() || fo.toTupleRef().elements().size() != 2 || !fo.toTupleRef().elements()[0].isTensor() ||
      !fo.toTupleRef().elements()[1].isTensor())
    throw InputError("model " + file + ": " + call + " must return a tuple (output, feature) of two tensors, got " +
                     fo.tagKind());
  const at::Tensor fout = fo.toTupleRef().elements()[0].toTensor();
  const at::Tensor feat = fo.toTupleRef().elements()[1].toTensor();
  if (fout.sizes() != at::IntArrayRef(shape))
    throw InputError("model " + file + ": " + call + " returned an output of shape " + shape_text(fout.sizes()) +
                     ", expected " + shape_text(shape));
  if (feat.dim() < 2 || feat.size(0) != 2 || !at::isFloatingType(feat.scalar_type()))
    throw InputError("model " + file + ": " + call + " returned a feature of shape " + shape_text(feat.sizes()) +
                     " and dtype " + std::string(c10::toString(feat.scalar_type())) +
                     ", expected a floating-point [B, ...] tensor with B = 2");
  return reduce_feature(feat).size(1);
}

}  // namespace

Model Model::load(const ModelOptions& opt) {
  const std::string file = opt.path.string();
  auto impl = std::make_shared<Impl>();
  impl->path = opt.path;
  impl->dtype = parse_dtype(opt.dtype);
  try {
    impl->device = c10::Device(opt.device);
  } catch (const c10::Error& e) {
    throw InputError(opt.where + "/device: invalid device '" + opt.device + "'");
  }
  if (impl->device.is_cuda() && !torch::cuda::is_available())
    throw InputError(opt.where + "/device: '" + opt.device + "' asked for, but this LibTorch sees no CUDA device");
  impl->module = read_archive(opt.path, impl->device, impl->archive_meta);
  impl->sha256 = sha256_file(opt.path);
  impl->module.eval();
  for (auto p : impl->module.parameters()) p.requires_grad_(false);  // frozen: AMED trains only its predictor
  validate_model_metadata(opt.overrides, opt.where, false);
  impl->meta = resolve_meta(impl->archive_meta, opt.overrides, file, opt.where);
  impl->prediction = &find_prediction(impl->meta.prediction, opt.where);
  if (impl->dtype != at::kFloat) impl->module.to(impl->dtype);

  const Probe probe{impl->module, impl->meta, at::TensorOptions().dtype(impl->dtype).device(impl->device), file};
  probe_forward(probe);
  if (impl->module.find_method("forward_with_features")) impl->feature_dim = probe_features(probe);
  Model m;
  m.impl_ = std::move(impl);
  return m;
}

const ModelMeta& Model::meta() const { return impl_->meta; }
const fs::path& Model::path() const { return impl_->path; }
const std::string& Model::sha256() const { return impl_->sha256; }
const json& Model::archive_metadata() const { return impl_->archive_meta; }
at::ScalarType Model::dtype() const { return impl_->dtype; }
c10::Device Model::device() const { return impl_->device; }

std::vector<std::string> Model::methods() const { return method_names(impl_->module); }

namespace {

// A model call during sampling: the model's own failure, or an output that breaks the
// contract the probe checked (a Tensor of x's shape, floating), is the user's input:
// InputError in one line, LibTorch's text at debug level.
template <class Call>
c10::IValue checked_call(const fs::path& file, const char* name, const Call& call) {
  try {
    return call();
  } catch (const InputError&) {
    throw;
  } catch (const std::exception& e) {
    const std::string text = error_text(e);
    spdlog::debug("model {}: {} failed:\n{}", file.string(), name, text);
    throw InputError("model " + file.string() + ": " + name + " failed while sampling: " + last_line(text).substr(0, 300));
  }
}

at::Tensor checked_output(const fs::path& file, const char* name, const c10::IValue& v, const at::Tensor& x_t) {
  if (!v.isTensor())
    throw InputError("model " + file.string() + ": " + name + " returned " + v.tagKind() + " while sampling, not a Tensor");
  at::Tensor o = v.toTensor();
  if (o.sizes() != x_t.sizes())
    throw InputError("model " + file.string() + ": " + name + " returned shape " + shape_text(o.sizes()) +
                     " for x of shape " + shape_text(x_t.sizes()) + " while sampling (the contract: x's shape)");
  if (!at::isFloatingType(o.scalar_type()))
    throw InputError("model " + file.string() + ": " + name + " returned dtype " +
                     std::string(c10::toString(o.scalar_type())) + " while sampling (the contract: floating-point)");
  return o;
}

}  // namespace

at::Tensor Model::forward(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& y) const {
  const AsScriptedOnCpu scripted(impl_->device);
  const c10::IValue out = checked_call(impl_->path, "forward", [&] {
    return y.defined() ? impl_->module.forward({x_t, t, y}) : impl_->module.forward({x_t, t});
  });
  return checked_output(impl_->path, "forward", out, x_t);
}

std::pair<at::Tensor, at::Tensor> Model::forward_with_features(const at::Tensor& x_t, const at::Tensor& t,
                                                               const at::Tensor& y) const {
  const AsScriptedOnCpu scripted(impl_->device);
  const c10::IValue out = checked_call(impl_->path, "forward_with_features", [&] {
    auto method = impl_->module.get_method("forward_with_features");
    return y.defined() ? method({x_t, t, y}) : method({x_t, t});
  });
  if (!out.isTuple() || out.toTupleRef().elements().size() != 2 || !out.toTupleRef().elements()[1].isTensor())
    throw InputError("model " + impl_->path.string() + ": forward_with_features returned " + out.tagKind() +
                     " while sampling, not an (output, feature) tuple of tensors");
  const auto& e = out.toTupleRef().elements();
  return {checked_output(impl_->path, "forward_with_features", e[0], x_t), reduce_feature(e[1].toTensor())};
}

bool Model::has_features() const { return impl_->feature_dim > 0; }
int64_t Model::feature_dim() const { return impl_->feature_dim; }

at::Tensor Model::x0_from_output(const at::Tensor& o, const at::Tensor& x_t, double t) const {
  const Process& p = impl_->meta.process;
  return impl_->prediction->x0(o, x_t, p.alpha(t), p.sigma(t), p.dalpha(t), p.dsigma(t));
}

at::Tensor Model::x0_from_output(const at::Tensor& o, const at::Tensor& x_t, const at::Tensor& t) const {
  const Process& p = impl_->meta.process;
  auto v = [&](const at::Tensor& c) { return per_sample(c, x_t); };
  return impl_->prediction->x0_per_sample(o, x_t, v(p.alpha(t)), v(p.sigma(t)), v(p.dalpha(t)), v(p.dsigma(t)));
}

ModelDenoiser::ModelDenoiser(const Model& model, c10::ScalarType state_dtype)
    : model_(model), state_dtype_(state_dtype) {}

void ModelDenoiser::set_condition(const at::Tensor& labels, double guidance) {
  labels_ = labels;
  guidance_ = guidance;
}

template <class S>
Denoised ModelDenoiser::evaluate(const Tensor& x, const S& sigma, bool with_feature) {
  const ModelMeta& meta = model_.meta();
  const Process& p = meta.process;
  const int64_t b = x.size(0);
  const auto opts = x.options().dtype(model_.dtype());
  // Model space: x_t = α x̃; at σ̃ = inf (α = 0) the argument is ε and x_t = σ ε.
  Tensor x_t, t_model;
  S t;
  if constexpr (std::is_same_v<S, double>) {
    t = p.time_of(sigma);
    if (std::isnan(t))
      throw InputError("model " + model_.path().string() + ": evaluated at sigma " + std::to_string(sigma) +
                       ", outside process '" + p.name() + "'" + process_range(p));
    x_t = x * (std::isinf(sigma) ? p.sigma(t) : p.alpha(t));
    t_model = at::full({b}, p.network_time(t), opts);
    sigmas_.push_back(sigma);
  } else {
    t = p.time_of(sigma.to(x.scalar_type()));
    x_t = x * per_sample(p.alpha(t), x);
    t_model = p.network_time(t).to(opts);
    sigmas_.push_back(std::numeric_limits<double>::quiet_NaN());
  }
  at::Tensor y;
  if (meta.num_classes > 0)
    y = labels_.defined() ? labels_ : at::full({b}, meta.num_classes, x.options().dtype(at::kLong));
  const bool guided = guidance_ != 1.0;
  Tensor x_in = x_t.to(opts), y_in = y;
  if (guided) {  // class and null rows in one call
    x_in = at::cat({x_in, x_in});
    t_model = at::cat({t_model, t_model});
    y_in = at::cat({y, at::full({b}, meta.num_classes, y.options())});
  }
  Tensor o, feature;
  if (with_feature && model_.has_features()) {
    std::tie(o, feature) = model_.forward_with_features(x_in, t_model, y_in);
    feature = feature.slice(0, 0, b).to(x.scalar_type());
  } else {
    o = model_.forward(x_in, t_model, y_in);
    if (with_feature) feature = at::zeros({b, feature_dim()}, x.options());
  }
  o = o.to(state_dtype_);
  finite_.push_back(o.detach().sum(at::kDouble));  // NaN or Inf anywhere makes the (never overflowing) sum non-finite
  if (!guided) return {model_.x0_from_output(o, x_t, t), feature};
  const at::Tensor d_class = model_.x0_from_output(o.slice(0, 0, b), x_t, t);
  const at::Tensor d_null = model_.x0_from_output(o.slice(0, b, 2 * b), x_t, t);
  return {d_null + (d_class - d_null) * guidance_, feature};
}

Tensor ModelDenoiser::denoise(const Tensor& x, double sigma) { return evaluate(x, sigma, false).x0; }
Tensor ModelDenoiser::denoise(const Tensor& x, const Tensor& sigma) { return evaluate(x, sigma, false).x0; }
Denoised ModelDenoiser::denoise_with_feature(const Tensor& x, double sigma) { return evaluate(x, sigma, true); }
int64_t ModelDenoiser::feature_dim() const { return model_.has_features() ? model_.feature_dim() : 1; }

void ModelDenoiser::reset() {
  sigmas_.clear();
  finite_.clear();
}

void ModelDenoiser::check_finite(const Grid& grid) const {
  if (finite_.empty() || at::stack(finite_).isfinite().all().item<bool>()) return;
  for (size_t k = 0; k < finite_.size(); ++k) {
    if (std::isfinite(finite_[k].item<double>())) continue;
    const double s = sigmas_[k];
    std::ostringstream msg;
    msg << "model " << model_.path().string() << " returned NaN or Inf at evaluation " << k + 1;
    if (std::isnan(s)) {
      msg << " (an AMED mean-value point: sigma differs per sample)";
    } else {
      size_t step = 0;
      while (step + 2 < grid.size() && grid[step + 1] >= s) ++step;
      msg << " (step " << step + 1 << " of " << grid.size() - 1 << ", sigma " << s << ", t "
          << model_.meta().process.time_of(s) << ")";
    }
    msg << "; sampling stopped";
    throw NonFiniteError(msg.str());
  }
}

}  // namespace diffode

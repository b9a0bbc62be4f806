#include "diffode/model.hpp"

#include <torch/cuda.h>
#include <torch/script.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "diffode/config.hpp"
#include "diffode/error.hpp"
#include "diffode/io.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// What the network outputs -> x̂0 (DESIGN.md §2), given x_t and, at model time t,
// a = α, s = σ, da = α', ds = σ'.
struct Prediction {
  std::string name;
  bool finite_at_pure_noise;  // x̂0 defined where α = 0 (a flow model at t = 1)
  at::Tensor (*x0)(const at::Tensor& o, const at::Tensor& x_t, double a, double s, double da, double ds);
};

const std::vector<Prediction>& predictions() {
  static const std::vector<Prediction> p = {
      {"x0", true, [](const at::Tensor& o, const at::Tensor&, double, double, double, double) { return o; }},
      {"eps", false,
       [](const at::Tensor& o, const at::Tensor& x_t, double a, double s, double, double) {
         return x_t.sub(o, s).div_(a);
       }},
      {"v", true,
       [](const at::Tensor& o, const at::Tensor& x_t, double a, double s, double, double) {
         return (x_t * a).sub_(o, s).div_(a * a + s * s);
       }},
      {"velocity", true,
       [](const at::Tensor& o, const at::Tensor& x_t, double a, double s, double da, double ds) {
         return (x_t * ds).sub_(o, s).div_(ds * a - s * da);
       }},
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
};

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
                     m.process.name() + "'");
  if (std::isinf(m.sigma_max) && !find_prediction(m.prediction, origin("prediction")).finite_at_pure_noise)
    throw InputError(origin("prediction") + ": a '" + m.prediction + "' model has no x0 estimate at pure noise " +
                     "(sigma_max = inf): set model.sigma_max to a finite value");
  m.num_classes = merged.value("num_classes", int64_t{0});
  if (m.num_classes < 0) throw InputError(origin("num_classes") + ": must be >= 0");
  m.null_class = merged.value("null_class", false);
  if (m.null_class && m.num_classes == 0)
    throw InputError(origin("null_class") + ": a null class needs num_classes > 0");
  m.description = merged.value("description", std::string());
  m.json = merged;
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
torch::jit::Module read_archive(const fs::path& path, c10::Device device, json& metadata) {
  const std::string file = path.string();
  if (!fs::exists(path)) throw InputError("model " + file + ": file does not exist");
  if (fs::is_directory(path)) throw InputError("model " + file + ": is a directory, not a TorchScript file");
  torch::jit::ExtraFilesMap extra{{"diffode.json", ""}};
  torch::jit::Module module;
  try {
    module = torch::jit::load(file, device, extra);
  } catch (const c10::Error& e) {
    throw InputError("model " + file + ": not a loadable TorchScript archive: " + first_line(e.what_without_backtrace()));
  }
  metadata = json::object();
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
  const torch::jit::Module module = read_archive(path, c10::kCPU, info.metadata);
  info.sha256 = sha256_file(path);
  info.methods = method_names(module);
  for (const char* key : {"prediction", "process", "sample_shape"})
    if (!info.metadata.contains(key)) info.missing.push_back(key);
  return info;
}

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
  validate_model_metadata(opt.overrides, opt.where, false);
  impl->meta = resolve_meta(impl->archive_meta, opt.overrides, file, opt.where);
  impl->prediction = &find_prediction(impl->meta.prediction, opt.where);
  if (impl->dtype != at::kFloat) impl->module.to(impl->dtype);

  // The probe: one call on a batch of 2 at mid-range time.
  auto fwd = impl->module.find_method("forward");
  if (!fwd) throw InputError("model " + file + ": has no forward method");
  const auto& args = fwd->function().getSchema().arguments();  // self, x, t[, y]
  const bool conditional = impl->meta.num_classes > 0;
  if (args.size() < 3 || (conditional && args.size() < 4))
    throw InputError("model " + file + ": forward takes " + std::to_string(args.size() - 1) +
                     " argument(s), but the contract is " + (conditional ? "forward(x, t, y) for a model with num_classes > 0"
                                                                        : "forward(x, t)"));
  if (!conditional && args.size() > 3 && !args[3].default_value())
    throw InputError("model " + file + ": forward needs a third argument '" + args[3].name() +
                     "' (class labels?): set num_classes (model.num_classes) for a class-conditional model");
  std::vector<int64_t> shape = {2};
  shape.insert(shape.end(), impl->meta.sample_shape.begin(), impl->meta.sample_shape.end());
  const auto opts = at::TensorOptions().dtype(impl->dtype).device(impl->device);
  const double t_mid = impl->meta.process.time_of(std::sqrt(std::max(impl->meta.sigma_min, 1e-3) *
                                                            std::min(impl->meta.sigma_max, 80.0)));
  c10::IValue out;
  try {
    c10::InferenceMode guard;
    std::vector<c10::IValue> inputs = {at::randn(shape, opts), at::full({2}, t_mid, opts)};
    if (conditional)  // class 0 and, where there is one, the null class
      inputs.emplace_back(at::tensor({int64_t{0}, impl->meta.null_class ? impl->meta.num_classes : int64_t{0}},
                                     at::TensorOptions().dtype(at::kLong).device(impl->device)));
    out = impl->module.forward(inputs);
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (auto* ce = dynamic_cast<const c10::Error*>(&e)) what = ce->what_without_backtrace();
    throw InputError("model " + file + ": forward(x, t" + (conditional ? ", y" : "") +
                     ") failed on a probe batch x of shape " + shape_text(shape) + " (2 x sample_shape), t of shape [2]" +
                     (conditional ? ", y of shape [2]" : "") + ": " + first_line(what));
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

at::Tensor Model::forward(const at::Tensor& x_t, const at::Tensor& t, const at::Tensor& y) const {
  if (y.defined()) return impl_->module.forward({x_t, t, y}).toTensor();
  return impl_->module.forward({x_t, t}).toTensor();
}

at::Tensor Model::x0_from_output(const at::Tensor& o, const at::Tensor& x_t, double t) const {
  const Process& p = impl_->meta.process;
  return impl_->prediction->x0(o, x_t, p.alpha(t), p.sigma(t), p.dalpha(t), p.dsigma(t));
}

ModelDenoiser::ModelDenoiser(const Model& model, c10::ScalarType state_dtype)
    : model_(model), state_dtype_(state_dtype) {}

void ModelDenoiser::set_condition(const at::Tensor& labels, double guidance) {
  labels_ = labels;
  guidance_ = guidance;
}

Tensor ModelDenoiser::denoise(const Tensor& x, double sigma) {
  const ModelMeta& meta = model_.meta();
  const Process& p = meta.process;
  const double t = p.time_of(sigma);
  const int64_t b = x.size(0);
  // Model space: x_t = α x̃; at σ̃ = inf (α = 0) the argument is ε and x_t = σ ε.
  const at::Tensor x_t = x * (std::isinf(sigma) ? p.sigma(t) : p.alpha(t));
  const auto opts = x.options().dtype(model_.dtype());
  at::Tensor y;
  if (meta.num_classes > 0)
    y = labels_.defined() ? labels_ : at::full({b}, meta.num_classes, x.options().dtype(at::kLong));
  const bool guided = guidance_ != 1.0;
  at::Tensor o;
  if (guided) {  // class and null rows in one call
    const at::Tensor y2 = at::cat({y, at::full({b}, meta.num_classes, y.options())});
    o = model_.forward(at::cat({x_t, x_t}).to(opts), at::full({2 * b}, t, opts), y2).to(state_dtype_);
  } else {
    o = model_.forward(x_t.to(opts), at::full({b}, t, opts), y).to(state_dtype_);
  }
  sigmas_.push_back(sigma);
  finite_.push_back(o.sum(at::kDouble));  // NaN or Inf anywhere makes the (never overflowing) sum non-finite
  if (!guided) return model_.x0_from_output(o, x_t, t);
  const at::Tensor d_class = model_.x0_from_output(o.slice(0, 0, b), x_t, t);
  const at::Tensor d_null = model_.x0_from_output(o.slice(0, b, 2 * b), x_t, t);
  return d_null.add_(d_class - d_null, guidance_);
}

void ModelDenoiser::reset() {
  sigmas_.clear();
  finite_.clear();
}

void ModelDenoiser::check_finite(const Grid& grid) const {
  if (finite_.empty() || at::stack(finite_).isfinite().all().item<bool>()) return;
  for (size_t k = 0; k < finite_.size(); ++k) {
    if (std::isfinite(finite_[k].item<double>())) continue;
    const double s = sigmas_[k];
    size_t step = 0;
    while (step + 2 < grid.size() && grid[step + 1] >= s) ++step;
    std::ostringstream msg;
    msg << "model " << model_.path().string() << " returned NaN or Inf at evaluation " << k + 1 << " (step "
        << step + 1 << " of " << grid.size() - 1 << ", sigma " << s << ", t " << model_.meta().process.time_of(s)
        << "); sampling stopped";
    throw InputError(msg.str());
  }
}

}  // namespace diffode

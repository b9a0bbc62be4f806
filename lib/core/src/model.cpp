#include "diffode/core/model.hpp"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>
#include <torch/cuda.h>
#include <torch/script.h>

#include <thread>

#include "diffode/core/dtype.hpp"
#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"
#include "diffode/core/solver.hpp"
#include "model_probe.hpp"
#include "torchscript.hpp"

namespace diffode {

using nlohmann::json;
namespace fs = std::filesystem;

int set_threads(int n) {
  const int threads = n > 0 ? n : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  return threads;
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

// Reads a TorchScript archive and its diffode.json (checked; informational and x_ keys allowed).
torch::jit::Module read_archive(const fs::path& path, c10::Device device, json& metadata,
                                json* predictor = nullptr) {
  const std::string file = path.string();
  torch::jit::ExtraFilesMap extra{{"diffode.json", ""}, {"diffode_predictor.json", ""}};
  torch::jit::Module module = load_torchscript(path, "model", "TorchScript file", device, &extra);
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
  impl->meta = resolve_model_meta(impl->archive_meta, opt.overrides, file, opt.where);
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

}  // namespace diffode

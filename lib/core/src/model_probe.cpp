#include "model_probe.hpp"

#include <algorithm>
#include <cmath>

#include "diffode/core/error.hpp"
#include "torchscript.hpp"

namespace diffode {

std::vector<int64_t> Probe::shape() const {
  std::vector<int64_t> s = {2};
  s.insert(s.end(), meta.sample_shape.begin(), meta.sample_shape.end());
  return s;
}

double Probe::t_mid() const {
  const Process& p = meta.process;
  const double lo = std::max(meta.sigma_min, p.timesteps() > 0 ? p.sigma_tilde(p.t_min()) : 0.0);
  return p.network_time(p.time_of(std::sqrt(std::max(lo, 1e-3) * std::min(meta.sigma_max, 80.0))));
}

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

}  // namespace diffode

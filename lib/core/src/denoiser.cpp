#include "diffode/core/denoiser.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "diffode/core/error.hpp"

namespace diffode {

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

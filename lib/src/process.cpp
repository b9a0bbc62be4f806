#include "diffode/process.hpp"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "diffode/error.hpp"

namespace diffode {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
using at::Tensor;

// Each closed form is written once, generic in its argument: a double, or a Tensor of
// per-sample values (differentiable, for the AMED steps whose σ differs per sample).
template <class T>
T constant(const T& like, double v) {
  if constexpr (std::is_same_v<T, Tensor>) return at::full_like(like, v);
  else return v;
}

// Closed forms of one process family, for doubles and for tensors; `b0`, `b1` are
// beta_min, beta_max (vp only).
struct Forms {
  template <class T>
  using Fn = T (*)(const T& t, double b0, double b1);
  Fn<double> alpha, sigma, dalpha, dsigma, time_of;
  Fn<Tensor> alpha_t, sigma_t, dalpha_t, dsigma_t, time_of_t;
};

// vp: log alpha(t) = -t²(b1 - b0)/4 - t b0/2 (linear beta schedule, Song et al. 2021).
template <class T>
T vp_log_alpha(const T& t, double b0, double b1) { return -0.25 * (b1 - b0) * t * t - 0.5 * b0 * t; }
template <class T>
T vp_alpha(const T& t, double b0, double b1) { using std::exp; return exp(vp_log_alpha(t, b0, b1)); }
template <class T>
T vp_sigma(const T& t, double b0, double b1) {
  using std::expm1, std::sqrt;
  return sqrt(-expm1(2.0 * vp_log_alpha(t, b0, b1)));
}
template <class T>
T vp_dalpha(const T& t, double b0, double b1) { return vp_alpha(t, b0, b1) * (-0.5 * (b1 - b0) * t - 0.5 * b0); }
template <class T>
T vp_dsigma(const T& t, double b0, double b1) {
  return -vp_alpha(t, b0, b1) * vp_dalpha(t, b0, b1) / vp_sigma(t, b0, b1);
}
// sigma_tilde² = 1/alpha² - 1, so (b1 - b0)/2 t² + b0 t - log(1 + sigma_tilde²) = 0.
template <class T>
T vp_time_of(const T& s, double b0, double b1) {
  using std::log1p, std::sqrt;
  const T c = log1p(s * s);
  const double db = b1 - b0;
  if (db == 0) return c / b0;
  return 2.0 * c / (b0 + sqrt(b0 * b0 + 2.0 * db * c));  // stable root of the quadratic
}

template <class T> T edm_alpha(const T& t, double, double) { return constant(t, 1.0); }
template <class T> T edm_sigma(const T& t, double, double) { return t; }
template <class T> T edm_dalpha(const T& t, double, double) { return constant(t, 0.0); }
template <class T> T edm_dsigma(const T& t, double, double) { return constant(t, 1.0); }
template <class T> T edm_time_of(const T& s, double, double) { return s; }

template <class T> T flow_alpha(const T& t, double, double) { return 1.0 - t; }
template <class T> T flow_sigma(const T& t, double, double) { return t; }
template <class T> T flow_dalpha(const T& t, double, double) { return constant(t, -1.0); }
template <class T> T flow_dsigma(const T& t, double, double) { return constant(t, 1.0); }
// sigma_tilde = t / (1 - t); written so that sigma_tilde = inf gives t = 1 exactly.
template <class T> T flow_time_of(const T& s, double, double) { return 1.0 - 1.0 / (1.0 + s); }

#define DIFFODE_FORMS(p)                                                                               \
  Forms {                                                                                              \
    p##_alpha<double>, p##_sigma<double>, p##_dalpha<double>, p##_dsigma<double>, p##_time_of<double>, \
        p##_alpha<Tensor>, p##_sigma<Tensor>, p##_dalpha<Tensor>, p##_dsigma<Tensor>, p##_time_of<Tensor> \
  }

}  // namespace

struct ProcessKind {
  std::string name;
  Forms forms;
  double t_min, t_max;
  bool has_betas;
};

namespace {
const std::vector<ProcessKind>& kinds() {
  static const std::vector<ProcessKind> k = {
      {"edm", DIFFODE_FORMS(edm), 0.002, 80.0, false},
      {"vp", DIFFODE_FORMS(vp), 1e-3, 1.0, true},
      {"flow", DIFFODE_FORMS(flow), 0.0, 1.0, false},
  };
  return k;
}
#undef DIFFODE_FORMS

void check_betas(double beta_min, double beta_max, const std::string& where) {
  if (!(beta_min > 0 && beta_max >= beta_min))
    throw InputError(where + "need 0 < beta_min <= beta_max, got beta_min " + std::to_string(beta_min) +
                     ", beta_max " + std::to_string(beta_max));
}
}  // namespace

std::vector<std::string> process_names() {
  std::vector<std::string> out;
  for (const auto& k : kinds()) out.push_back(k.name);
  return out;
}

Process Process::from_json(const nlohmann::json& spec, const std::string& where) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    throw InputError(where + ": expected an object like {\"type\": \"flow\"}, got " + spec.dump());
  const std::string type = spec["type"].get<std::string>();
  Process p;
  for (const auto& k : kinds())
    if (k.name == type) p.kind_ = &k;
  if (!p.kind_) throw InputError(where + "/type: " + unknown_name_message("process", type, process_names()));
  for (const char* key : {"beta_min", "beta_max"}) {
    if (!spec.contains(key)) continue;
    if (!p.kind_->has_betas)
      throw InputError(where + "/" + key + ": process '" + type + "' takes no '" + key + "'");
    if (!spec[key].is_number()) throw InputError(where + "/" + key + ": expected a number, got " + spec[key].dump());
  }
  p.beta_min_ = spec.value("beta_min", 0.1);
  p.beta_max_ = spec.value("beta_max", 20.0);
  if (p.kind_->has_betas) check_betas(p.beta_min_, p.beta_max_, where + ": ");
  return p;
}

Process Process::vp(double beta_min, double beta_max) {
  check_betas(beta_min, beta_max, "process 'vp': ");
  Process p;
  for (const auto& k : kinds())
    if (k.name == "vp") p.kind_ = &k;
  p.beta_min_ = beta_min;
  p.beta_max_ = beta_max;
  return p;
}

const std::string& Process::name() const { return kind_->name; }

nlohmann::json Process::to_json() const {
  nlohmann::json j = {{"type", kind_->name}};
  if (kind_->has_betas) {
    j["beta_min"] = beta_min_;
    j["beta_max"] = beta_max_;
  }
  return j;
}

double Process::alpha(double t) const { return kind_->forms.alpha(t, beta_min_, beta_max_); }
double Process::sigma(double t) const { return kind_->forms.sigma(t, beta_min_, beta_max_); }
double Process::dalpha(double t) const { return kind_->forms.dalpha(t, beta_min_, beta_max_); }
double Process::dsigma(double t) const { return kind_->forms.dsigma(t, beta_min_, beta_max_); }
double Process::sigma_tilde(double t) const {
  const double a = alpha(t);
  return a == 0 ? kInf : sigma(t) / a;
}
double Process::time_of(double s) const { return kind_->forms.time_of(s, beta_min_, beta_max_); }
at::Tensor Process::alpha(const at::Tensor& t) const { return kind_->forms.alpha_t(t, beta_min_, beta_max_); }
at::Tensor Process::sigma(const at::Tensor& t) const { return kind_->forms.sigma_t(t, beta_min_, beta_max_); }
at::Tensor Process::dalpha(const at::Tensor& t) const { return kind_->forms.dalpha_t(t, beta_min_, beta_max_); }
at::Tensor Process::dsigma(const at::Tensor& t) const { return kind_->forms.dsigma_t(t, beta_min_, beta_max_); }
at::Tensor Process::time_of(const at::Tensor& s) const { return kind_->forms.time_of_t(s, beta_min_, beta_max_); }
double Process::t_min() const { return kind_->t_min; }
double Process::t_max() const { return kind_->t_max; }

}  // namespace diffode

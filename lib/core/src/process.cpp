#include "diffode/core/process.hpp"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffode/core/error.hpp"

namespace diffode {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
using at::Tensor;
using nlohmann::json;

// Each closed form is written once, generic in its argument: a double, or a Tensor of
// per-sample values (differentiable, for the AMED steps whose σ differs per sample).
template <class T>
T constant(const T& like, double v) {
  if constexpr (std::is_same_v<T, Tensor>) return at::full_like(like, v);
  else return v;
}

// Closed forms of one process family, for doubles and for tensors, reading the family's
// parameters (vp's betas, a discrete table).
struct Forms {
  template <class T>
  using Fn = T (*)(const T& t, const ProcessParams& p);
  Fn<double> alpha, sigma, dalpha, dsigma, time_of;
  Fn<Tensor> alpha_t, sigma_t, dalpha_t, dsigma_t, time_of_t;
};

// vp: log alpha(t) = -t²(b1 - b0)/4 - t b0/2 (linear beta schedule, Song et al. 2021).
template <class T>
T vp_log_alpha(const T& t, const ProcessParams& p) {
  return -0.25 * (p.beta_max - p.beta_min) * t * t - 0.5 * p.beta_min * t;
}
template <class T>
T vp_alpha(const T& t, const ProcessParams& p) { using std::exp; return exp(vp_log_alpha(t, p)); }
template <class T>
T vp_sigma(const T& t, const ProcessParams& p) {
  using std::expm1, std::sqrt;
  return sqrt(-expm1(2.0 * vp_log_alpha(t, p)));
}
template <class T>
T vp_dalpha(const T& t, const ProcessParams& p) {
  return vp_alpha(t, p) * (-0.5 * (p.beta_max - p.beta_min) * t - 0.5 * p.beta_min);
}
template <class T>
T vp_dsigma(const T& t, const ProcessParams& p) { return -vp_alpha(t, p) * vp_dalpha(t, p) / vp_sigma(t, p); }
// sigma_tilde² = 1/alpha² - 1, so (b1 - b0)/2 t² + b0 t - log(1 + sigma_tilde²) = 0.
template <class T>
T vp_time_of(const T& s, const ProcessParams& p) {
  using std::log1p, std::sqrt;
  const T c = log1p(s * s);
  const double b0 = p.beta_min, db = p.beta_max - p.beta_min;
  if (db == 0) return c / b0;
  return 2.0 * c / (b0 + sqrt(b0 * b0 + 2.0 * db * c));  // stable root of the quadratic
}

template <class T> T edm_alpha(const T& t, const ProcessParams&) { return constant(t, 1.0); }
template <class T> T edm_sigma(const T& t, const ProcessParams&) { return t; }
template <class T> T edm_dalpha(const T& t, const ProcessParams&) { return constant(t, 0.0); }
template <class T> T edm_dsigma(const T& t, const ProcessParams&) { return constant(t, 1.0); }
template <class T> T edm_time_of(const T& s, const ProcessParams&) { return s; }

template <class T> T flow_alpha(const T& t, const ProcessParams&) { return 1.0 - t; }
template <class T> T flow_sigma(const T& t, const ProcessParams&) { return t; }
template <class T> T flow_dalpha(const T& t, const ProcessParams&) { return constant(t, -1.0); }
template <class T> T flow_dsigma(const T& t, const ProcessParams&) { return constant(t, 1.0); }
// sigma_tilde = t / (1 - t); written so that sigma_tilde = inf gives t = 1 exactly.
template <class T> T flow_time_of(const T& s, const ProcessParams&) { return 1.0 - 1.0 / (1.0 + s); }

}  // namespace

// discrete: the model time is the trained timestep i = 0 … T−1 (fractional between them);
// σ̃_i = √((1 − ᾱ_i)/ᾱ_i) and log σ̃ is linear in t between timesteps (the convention of
// k-diffusion's discrete denoisers), so α = (1 + σ̃²)^(-1/2) = √ᾱ, σ = σ̃·α.
struct DiscreteTable {
  std::vector<double> log_sigmas;  // L_i = log σ̃_i, strictly increasing
  Tensor log_sigmas_t;             // the same, double [T]
  json source;                     // {"alphas_cumprod": [...]} or {"betas": {...}}, as given
};

namespace {

// u = log σ̃(t) and its slope du/dt on the table interval holding t (t clamped to the table).
double discrete_u(double t, const DiscreteTable& tb, double* slope) {
  const auto& L = tb.log_sigmas;
  if (std::isnan(t)) {  // no time: no sigma (and no cast of NaN to an index)
    if (slope) *slope = t;
    return t;
  }
  const double tc = std::clamp(t, 0.0, static_cast<double>(L.size() - 1));
  const size_t k = std::min(static_cast<size_t>(tc), L.size() - 2);
  const double d = L[k + 1] - L[k];
  if (slope) *slope = d;
  return L[k] + (tc - static_cast<double>(k)) * d;
}
Tensor discrete_u(const Tensor& t, const DiscreteTable& tb, Tensor* slope) {
  const Tensor L = tb.log_sigmas_t.to(t.options());
  const int64_t n = L.size(0);
  const Tensor tc = t.clamp(0, static_cast<double>(n - 1));
  const Tensor k = tc.detach().floor().clamp(0, static_cast<double>(n - 2)).to(at::kLong);
  const Tensor lo = L.index_select(0, k.flatten()).view_as(t), hi = L.index_select(0, (k + 1).flatten()).view_as(t);
  if (slope) *slope = hi - lo;
  return lo + (tc - k.to(t.scalar_type())) * (hi - lo);
}

template <class T>
T discrete_alpha(const T& t, const ProcessParams& p) {
  using std::exp, std::log1p;
  return exp(-0.5 * log1p(exp(2.0 * discrete_u(t, *p.table, nullptr))));
}
template <class T>
T discrete_sigma(const T& t, const ProcessParams& p) {
  using std::exp;
  return exp(discrete_u(t, *p.table, nullptr)) * discrete_alpha(t, p);
}
// dα/du = −σ̃²α³ and dσ/du = σ̃α³, times du/dt (constant between timesteps).
template <class T>
T discrete_dalpha(const T& t, const ProcessParams& p) {
  using std::exp;
  T slope{};
  const T s = exp(discrete_u(t, *p.table, &slope)), a = discrete_alpha(t, p);
  return -(s * s) * (a * a * a) * slope;
}
template <class T>
T discrete_dsigma(const T& t, const ProcessParams& p) {
  using std::exp;
  T slope{};
  const T s = exp(discrete_u(t, *p.table, &slope)), a = discrete_alpha(t, p);
  return s * (a * a * a) * slope;
}
constexpr double kSnap = 1e-9;  // timesteps this close to a whole one are that one

double discrete_time_of(const double& s, const ProcessParams& p) {
  const auto& L = p.table->log_sigmas;
  const double u = std::log(s), tol = 1e-9;
  if (!(u >= L.front() - tol && u <= L.back() + tol)) return std::numeric_limits<double>::quiet_NaN();
  const double uc = std::clamp(u, L.front(), L.back());
  const size_t above = static_cast<size_t>(std::upper_bound(L.begin(), L.end(), uc) - L.begin());
  const size_t k = std::clamp<size_t>(above, 1, L.size() - 1) - 1;
  const double t = static_cast<double>(k) + (uc - L[k]) / (L[k + 1] - L[k]);
  // A trained timestep's own sigma gives that whole timestep, not one a rounding below it (a
  // network that casts t to an integer would take the previous one).
  return std::abs(t - std::nearbyint(t)) < kSnap ? std::nearbyint(t) : t;
}
// The same per sample, clamped to the table's ends (k-diffusion's convention), snapped to
// whole timesteps in value only (the gradient is that of the interpolation).
Tensor discrete_time_of(const Tensor& s, const ProcessParams& p) {
  const Tensor L = p.table->log_sigmas_t.to(s.options());
  const int64_t n = L.size(0);
  const Tensor u = at::log(s).clamp(p.table->log_sigmas.front(), p.table->log_sigmas.back());
  const Tensor above = at::searchsorted(L, u.detach().contiguous(), false, true);
  const Tensor k = (above - 1).clamp(0, n - 2);
  const Tensor lo = L.index_select(0, k.flatten()).view_as(s), hi = L.index_select(0, (k + 1).flatten()).view_as(s);
  const Tensor t = k.to(s.scalar_type()) + (u - lo) / (hi - lo);
  const Tensor whole = t.detach().round();
  return at::where((t.detach() - whole).abs() < kSnap, t + (whole - t.detach()), t);
}

#define DIFFODE_FORMS(p)                                                                               \
  Forms {                                                                                              \
    p##_alpha<double>, p##_sigma<double>, p##_dalpha<double>, p##_dsigma<double>, p##_time_of, \
        p##_alpha<Tensor>, p##_sigma<Tensor>, p##_dalpha<Tensor>, p##_dsigma<Tensor>, p##_time_of \
  }

}  // namespace

struct ProcessKind {
  std::string name;
  Forms forms;
  double t_min, t_max;            // default time range (discrete: its table's)
  std::vector<std::string> keys;  // the keys of `process` it takes besides type and time_scale
};

namespace {
const std::vector<ProcessKind>& kinds() {
  static const std::vector<ProcessKind> k = {
      {"edm", DIFFODE_FORMS(edm), 0.002, 80.0, {}},
      {"vp", DIFFODE_FORMS(vp), 1e-3, 1.0, {"beta_min", "beta_max"}},
      {"flow", DIFFODE_FORMS(flow), 0.0, 1.0, {"shift"}},
      {"discrete", DIFFODE_FORMS(discrete), 0.0, 0.0, {"alphas_cumprod", "betas", "quantize"}},
  };
  return k;
}
#undef DIFFODE_FORMS

const ProcessKind& find_kind(const std::string& name, const std::string& where) {
  for (const auto& k : kinds())
    if (k.name == name) return k;
  throw InputError(where + "/type: " + unknown_name_message("process", name, process_names()));
}

std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void check_betas(double beta_min, double beta_max, const std::string& where) {
  if (!(beta_min > 0 && beta_max >= beta_min))
    throw InputError(where + "need 0 < beta_min <= beta_max, got beta_min " + std::to_string(beta_min) +
                     ", beta_max " + std::to_string(beta_max));
}

// A number > 0 (finite) at spec[key], or `def` when absent.
double positive(const json& spec, const char* key, double def, const std::string& where) {
  if (!spec.contains(key)) return def;
  const json& v = spec[key];
  if (!v.is_number() || !(v.get<double>() > 0) || !std::isfinite(v.get<double>()))
    throw InputError(where + "/" + key + ": must be a number > 0, got " + text_excerpt(v.dump()));
  return v.get<double>();
}

// β_i of T = n timesteps; u = i/(n − 1), last: whether i = n − 1 (then exactly `end`).
double linear_beta(size_t, size_t, double u, bool last, double start, double end) {
  return last ? end : start + (end - start) * u;
}
double scaled_linear_beta(size_t, size_t, double u, bool last, double start, double end) {
  const double r = last ? std::sqrt(end) : std::sqrt(start) + (std::sqrt(end) - std::sqrt(start)) * u;
  return r * r;
}
double cosine_beta(size_t i, size_t n, double, bool, double, double) {
  auto f = [n](size_t j) {
    const double c = std::cos((static_cast<double>(j) / static_cast<double>(n) + 0.008) / 1.008 * M_PI / 2);
    return c * c;
  };
  return std::min(1.0 - f(i + 1) / f(i), 0.999);
}

struct BetaSchedule {
  std::string name;
  double start, end;  // defaults (NaN: the schedule takes no start/end)
  double (*beta)(size_t i, size_t n, double u, bool last, double start, double end);
};
const std::vector<BetaSchedule>& beta_schedules() {
  static const std::vector<BetaSchedule> b = {
      {"linear", 1e-4, 0.02, linear_beta},                          // DDPM (Ho et al. 2020)
      {"scaled_linear", 0.00085, 0.012, scaled_linear_beta},        // latent diffusion / SD 1.x–2.x
      {"cosine", std::nan(""), std::nan(""), cosine_beta},          // improved DDPM (Nichol & Dhariwal 2021)
  };
  return b;
}

const BetaSchedule& find_beta_schedule(const std::string& name, const std::string& where) {
  for (const auto& b : beta_schedules())
    if (b.name == name) return b;
  throw InputError(where + unknown_name_message("beta schedule", name, beta_schedule_names()));
}

// ᾱ from `betas`: {"schedule": ..., "start": ..., "end": ..., "steps": ...}; `spec` is
// completed with the defaults used (the process's identity).
std::vector<double> alphas_from_betas(json& spec, const std::string& where) {
  if (!spec.is_object()) throw InputError(where + ": expected an object like {\"schedule\": \"linear\"}, got " + text_excerpt(spec.dump()));
  for (auto it = spec.begin(); it != spec.end(); ++it)
    if (it.key() != "schedule" && it.key() != "start" && it.key() != "end" && it.key() != "steps")
      throw InputError(where + "/" + text_excerpt(it.key()) + ": " +
                       unknown_name_message("key", it.key(), {"schedule", "start", "end", "steps"}));
  if (!spec.contains("schedule") || !spec["schedule"].is_string())
    throw InputError(where + "/schedule: required: one of " + [] {
      std::string names;
      for (const auto& n : beta_schedule_names()) names += (names.empty() ? "" : ", ") + n;
      return names;
    }());
  const std::string name = spec["schedule"].get<std::string>();
  const BetaSchedule* sched = &find_beta_schedule(name, where + "/schedule: ");
  const json& steps_v = spec.value("steps", json(1000));
  if (!steps_v.is_number_integer() || steps_v.get<double>() < 2 || steps_v.get<double>() > 100000)
    throw InputError(where + "/steps: must be an integer in [2, 100000], got " + text_excerpt(steps_v.dump()));
  const int64_t steps = steps_v.get<int64_t>();
  spec["steps"] = steps;
  if (std::isnan(sched->start)) {
    for (const char* key : {"start", "end"})
      if (spec.contains(key))
        throw InputError(where + "/" + key + ": beta schedule '" + name + "' takes no " + key +
                         " (its betas follow from cos²; diffusers ignores beta_start/beta_end for it)");
    return alphas_cumprod(name, 0, 0, steps);
  }
  const double start = positive(spec, "start", sched->start, where), end = positive(spec, "end", sched->end, where);
  if (!(end >= start && end < 1))
    throw InputError(where + ": need 0 < start <= end < 1, got start " + num(start) + ", end " + num(end));
  spec["start"] = start;
  spec["end"] = end;
  return alphas_cumprod(name, start, end, steps);
}

// The table of a discrete process from exactly one of alphas_cumprod and betas.
std::shared_ptr<const DiscreteTable> discrete_table(const json& spec, const std::string& where) {
  const bool table = spec.contains("alphas_cumprod"), betas = spec.contains("betas");
  if (table == betas)
    throw InputError(where + ": a discrete process needs exactly one of 'alphas_cumprod' (the table of ᾱ per "
                     "trained timestep) and 'betas' ({\"schedule\": \"linear\"|\"scaled_linear\"|\"cosine\", ...}), got " +
                     (table ? "both" : "neither"));
  auto tb = std::make_shared<DiscreteTable>();
  std::vector<double> abar;
  std::string at = where + "/alphas_cumprod";
  if (table) {
    const json& v = spec["alphas_cumprod"];
    if (!v.is_array() || v.size() < 2 || v.size() > 100000)
      throw InputError(at + ": expected a list of 2 to 100000 numbers, got " + text_excerpt(v.dump()));
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number()) throw InputError(at + "/" + std::to_string(i) + ": expected a number, got " + text_excerpt(v[i].dump()));
      abar.push_back(v[i].get<double>());
    }
    tb->source = {{"alphas_cumprod", abar}};
  } else {
    json b = spec["betas"];
    abar = alphas_from_betas(b, where + "/betas");
    tb->source = {{"betas", b}};
    at = where + "/betas: gives alphas_cumprod";
  }
  for (size_t i = 0; i < abar.size(); ++i) {
    if (!(abar[i] > 0 && abar[i] < 1))
      throw InputError(at + "/" + std::to_string(i) + ": must be in (0, 1), got " + num(abar[i]));
    if (i > 0 && !(abar[i] < abar[i - 1]))
      throw InputError(at + "/" + std::to_string(i) + ": the table must strictly decrease (ᾱ falls as noise grows), got " +
                       num(abar[i - 1]) + " then " + num(abar[i]));
    tb->log_sigmas.push_back(0.5 * (std::log1p(-abar[i]) - std::log(abar[i])));
    // σ̃ = √((1 − ᾱ)/ᾱ) past 1e30 is no trained noise level (a subnormal ᾱ read as sigma inf).
    if (tb->log_sigmas.back() > std::log(1e30))
      throw InputError(at + "/" + std::to_string(i) + ": " + num(abar[i]) + " gives sigma e^" +
                       num(tb->log_sigmas.back()) + ", beyond 1e30 (an alpha-bar this close to 0 is no trained "
                       "noise level)");
  }
  for (size_t i = 1; i < abar.size(); ++i)
    if (!(tb->log_sigmas[i] > tb->log_sigmas[i - 1]))
      throw InputError(at + "/" + std::to_string(i) + ": entries " + std::to_string(i - 1) + " and " +
                       std::to_string(i) + " give the same sigma in double precision");
  tb->log_sigmas_t = at::tensor(tb->log_sigmas, at::kDouble);
  return tb;
}
}  // namespace

std::vector<std::string> process_names() {
  std::vector<std::string> out;
  for (const auto& k : kinds()) out.push_back(k.name);
  return out;
}

std::vector<std::string> beta_schedule_names() {
  std::vector<std::string> out;
  for (const auto& b : beta_schedules()) out.push_back(b.name);
  return out;
}

std::vector<double> alphas_cumprod(const std::string& schedule, double start, double end, int64_t steps) {
  const BetaSchedule& sched = find_beta_schedule(schedule, "");
  const size_t n = static_cast<size_t>(steps);
  std::vector<double> abar(n);
  double prod = 1.0;
  for (size_t i = 0; i < n; ++i) {
    const double u = n > 1 ? static_cast<double>(i) / static_cast<double>(n - 1) : 0.0;
    abar[i] = prod *= 1.0 - sched.beta(i, n, u, i + 1 == n, start, end);
  }
  return abar;
}

Process Process::from_json(const json& spec, const std::string& where) {
  if (!spec.is_object() || !spec.contains("type") || !spec["type"].is_string())
    throw InputError(where + ": expected an object like {\"type\": \"flow\"}, got " + text_excerpt(spec.dump()));
  const std::string type = spec["type"].get<std::string>();
  Process p;
  p.kind_ = &find_kind(type, where);
  std::vector<std::string> known = {"type", "time_scale"};
  known.insert(known.end(), p.kind_->keys.begin(), p.kind_->keys.end());
  for (auto it = spec.begin(); it != spec.end(); ++it) {
    if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
    bool other = false;
    for (const auto& k : kinds()) other = other || std::find(k.keys.begin(), k.keys.end(), it.key()) != k.keys.end();
    if (other) {
      const std::string why = it.key() == "quantize" ? " (only a discrete process has trained timesteps to round to)" : "";
      throw InputError(where + "/" + it.key() + ": process '" + type + "' takes no '" + it.key() + "'" + why);
    }
    throw InputError(where + "/" + text_excerpt(it.key()) + ": " + unknown_name_message("key", it.key(), known));
  }
  for (const char* key : {"beta_min", "beta_max"})
    if (spec.contains(key) && !spec[key].is_number())
      throw InputError(where + "/" + key + ": expected a number, got " + text_excerpt(spec[key].dump()));
  p.params_.beta_min = spec.value("beta_min", 0.1);
  p.params_.beta_max = spec.value("beta_max", 20.0);
  if (type == "vp") check_betas(p.params_.beta_min, p.params_.beta_max, where + ": ");
  p.time_scale_ = positive(spec, "time_scale", 1.0, where);
  p.shift_ = positive(spec, "shift", 1.0, where);
  // Published shifts are 1 to ~10; past these bounds a grid's points collapse into one
  // another (5e-324 gave a "non-decreasing grid" blamed on the solver's NFE).
  if (!(p.shift_ >= 1e-4 && p.shift_ <= 1e4))
    throw InputError(where + "/shift: must be in [1e-4, 1e4], got " + num(p.shift_));
  if (spec.contains("quantize") && !spec["quantize"].is_boolean())
    throw InputError(where + "/quantize: expected a boolean, got " + text_excerpt(spec["quantize"].dump()));
  p.quantize_ = spec.value("quantize", false);
  if (type == "discrete") p.params_.table = discrete_table(spec, where);
  return p;
}

Process Process::vp(double beta_min, double beta_max) {
  check_betas(beta_min, beta_max, "process 'vp': ");
  Process p;
  p.kind_ = &find_kind("vp", "process");
  p.params_.beta_min = beta_min;
  p.params_.beta_max = beta_max;
  return p;
}

const std::string& Process::name() const { return kind_->name; }

json Process::to_json() const {
  json j = {{"type", kind_->name}};
  if (kind_->name == "vp") {
    j["beta_min"] = params_.beta_min;
    j["beta_max"] = params_.beta_max;
  }
  if (params_.table) j.update(params_.table->source);
  if (quantize_) j["quantize"] = true;
  if (shift_ != 1.0) j["shift"] = shift_;
  if (time_scale_ != 1.0) j["time_scale"] = time_scale_;
  return j;
}

double Process::alpha(double t) const { return kind_->forms.alpha(t, params_); }
double Process::sigma(double t) const { return kind_->forms.sigma(t, params_); }
double Process::dalpha(double t) const { return kind_->forms.dalpha(t, params_); }
double Process::dsigma(double t) const { return kind_->forms.dsigma(t, params_); }
double Process::sigma_tilde(double t) const {
  const double a = alpha(t);
  return a == 0 ? kInf : sigma(t) / a;
}
double Process::time_of(double s) const { return kind_->forms.time_of(s, params_); }
at::Tensor Process::alpha(const at::Tensor& t) const { return kind_->forms.alpha_t(t, params_); }
at::Tensor Process::sigma(const at::Tensor& t) const { return kind_->forms.sigma_t(t, params_); }
at::Tensor Process::dalpha(const at::Tensor& t) const { return kind_->forms.dalpha_t(t, params_); }
at::Tensor Process::dsigma(const at::Tensor& t) const { return kind_->forms.dsigma_t(t, params_); }
at::Tensor Process::time_of(const at::Tensor& s) const { return kind_->forms.time_of_t(s, params_); }
double Process::t_min() const { return kind_->t_min; }
double Process::t_max() const {
  return params_.table ? static_cast<double>(params_.table->log_sigmas.size() - 1) : kind_->t_max;
}
std::string Process::sigma_span() const { return num(sigma_tilde(t_min())) + " to " + num(sigma_tilde(t_max())); }

int64_t Process::timesteps() const {
  return params_.table ? static_cast<int64_t>(params_.table->log_sigmas.size()) : 0;
}

double Process::network_time(double t) const { return (quantize_ ? std::floor(t + 0.5) : t) * time_scale_; }
at::Tensor Process::network_time(const at::Tensor& t) const {
  if (!quantize_ && time_scale_ == 1.0) return t;
  return (quantize_ ? (t + 0.5).floor() : t) * time_scale_;
}

}  // namespace diffode

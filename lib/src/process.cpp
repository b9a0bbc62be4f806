#include "diffode/process.hpp"

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "diffode/error.hpp"

namespace diffode {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();

// Closed forms of one process family; `b0`, `b1` are beta_min, beta_max (vp only).
struct Forms {
  double (*alpha)(double t, double b0, double b1);
  double (*sigma)(double t, double b0, double b1);
  double (*dalpha)(double t, double b0, double b1);
  double (*dsigma)(double t, double b0, double b1);
  double (*time_of)(double sigma_tilde, double b0, double b1);
};

// vp: log alpha(t) = -t²(b1 - b0)/4 - t b0/2 (linear beta schedule, Song et al. 2021).
double vp_log_alpha(double t, double b0, double b1) { return -0.25 * t * t * (b1 - b0) - 0.5 * t * b0; }
double vp_alpha(double t, double b0, double b1) { return std::exp(vp_log_alpha(t, b0, b1)); }
double vp_sigma(double t, double b0, double b1) { return std::sqrt(-std::expm1(2 * vp_log_alpha(t, b0, b1))); }
double vp_dalpha(double t, double b0, double b1) { return vp_alpha(t, b0, b1) * (-0.5 * t * (b1 - b0) - 0.5 * b0); }
double vp_dsigma(double t, double b0, double b1) {
  return -vp_alpha(t, b0, b1) * vp_dalpha(t, b0, b1) / vp_sigma(t, b0, b1);
}
// sigma_tilde² = 1/alpha² - 1, so (b1 - b0)/2 t² + b0 t - log(1 + sigma_tilde²) = 0.
double vp_time_of(double s, double b0, double b1) {
  const double c = std::log1p(s * s), db = b1 - b0;
  if (db == 0) return c / b0;
  return 2 * c / (b0 + std::sqrt(b0 * b0 + 2 * db * c));  // stable root of the quadratic
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
      {"edm",
       {[](double, double, double) { return 1.0; }, [](double t, double, double) { return t; },
        [](double, double, double) { return 0.0; }, [](double, double, double) { return 1.0; },
        [](double s, double, double) { return s; }},
       0.002, 80.0, false},
      {"vp", {vp_alpha, vp_sigma, vp_dalpha, vp_dsigma, vp_time_of}, 1e-3, 1.0, true},
      {"flow",
       {[](double t, double, double) { return 1.0 - t; }, [](double t, double, double) { return t; },
        [](double, double, double) { return -1.0; }, [](double, double, double) { return 1.0; },
        [](double s, double, double) { return std::isinf(s) ? 1.0 : s / (1.0 + s); }},
       0.0, 1.0, false},
  };
  return k;
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
  if (p.kind_->has_betas && !(p.beta_min_ > 0 && p.beta_max_ >= p.beta_min_))
    throw InputError(where + ": need 0 < beta_min <= beta_max, got beta_min " + std::to_string(p.beta_min_) +
                     ", beta_max " + std::to_string(p.beta_max_));
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
double Process::t_min() const { return kind_->t_min; }
double Process::t_max() const { return kind_->t_max; }

}  // namespace diffode

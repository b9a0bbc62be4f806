#pragma once
// Noise processes x_t = alpha(t) x0 + sigma(t) eps and their link to the canonical
// scaled space of DESIGN.md §2: sigma_tilde(t) = sigma(t) / alpha(t).
#include <ATen/core/Tensor.h>

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace diffode {

struct ProcessKind;

class Process {
 public:
  // Parses {"type": "vp", "beta_min": 0.1, "beta_max": 20}; `where` names the JSON
  // location for error messages.
  static Process from_json(const nlohmann::json& spec, const std::string& where);
  // The vp process with linear beta from beta_min to beta_max (0 < beta_min <= beta_max).
  static Process vp(double beta_min, double beta_max);

  const std::string& name() const;
  nlohmann::json to_json() const;

  double alpha(double t) const;
  double sigma(double t) const;
  double dalpha(double t) const;  // d alpha / dt
  double dsigma(double t) const;  // d sigma / dt
  double sigma_tilde(double t) const;   // sigma / alpha, +inf where alpha = 0
  double time_of(double sigma_tilde) const;  // exact inverse of sigma_tilde
  // The same, elementwise on per-sample values (differentiable; finite σ̃ only).
  at::Tensor alpha(const at::Tensor& t) const;
  at::Tensor sigma(const at::Tensor& t) const;
  at::Tensor dalpha(const at::Tensor& t) const;
  at::Tensor dsigma(const at::Tensor& t) const;
  at::Tensor time_of(const at::Tensor& sigma_tilde) const;
  double t_min() const;  // default time range of the process
  double t_max() const;

 private:
  const ProcessKind* kind_ = nullptr;
  double beta_min_ = 0.1;
  double beta_max_ = 20.0;
};

std::vector<std::string> process_names();

}  // namespace diffode

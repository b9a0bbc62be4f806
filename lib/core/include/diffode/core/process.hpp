#pragma once
// Noise processes x_t = alpha(t) x0 + sigma(t) eps and their link to the canonical
// scaled space of DESIGN.md §2: sigma_tilde(t) = sigma(t) / alpha(t).
#include <ATen/core/Tensor.h>

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace diffode {

struct ProcessKind;
struct DiscreteTable;

// What the closed forms of a process family read: vp's betas, a discrete process's table
// (log σ̃ at each trained timestep, increasing, and how it was given).
struct ProcessParams {
  double beta_min = 0.1;
  double beta_max = 20.0;
  std::shared_ptr<const DiscreteTable> table;
};

class Process {
 public:
  // Parses {"type": "vp", "beta_min": 0.1, "beta_max": 20}, {"type": "flow", "shift": 3},
  // {"type": "discrete", "betas": {"schedule": "linear"}}, ...; `where` names the JSON
  // location for error messages (InputError naming the key).
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
  // Exact inverse of sigma_tilde; NaN for a sigma_tilde the process does not reach (a
  // discrete process: outside its table's ends).
  double time_of(double sigma_tilde) const;
  // The same, elementwise on per-sample values (differentiable; finite σ̃ only).
  at::Tensor alpha(const at::Tensor& t) const;
  at::Tensor sigma(const at::Tensor& t) const;
  at::Tensor dalpha(const at::Tensor& t) const;
  at::Tensor dsigma(const at::Tensor& t) const;
  at::Tensor time_of(const at::Tensor& sigma_tilde) const;
  double t_min() const;  // default time range of the process
  double t_max() const;

  // The time argument the network is called with: t (with `quantize`, the nearest trained
  // timestep) times `time_scale`. The prediction is read in the process's own t.
  double network_time(double t) const;
  at::Tensor network_time(const at::Tensor& t) const;
  // The flow shift s (1: none): grids are s·(the grid built on [σ_min/s, σ_max/s]).
  double shift() const { return shift_; }
  // The number of trained timesteps of a discrete process; 0 for a continuous one.
  int64_t timesteps() const;
  // "σ̃(t_min) to σ̃(t_max)" of the default range, for messages ("0.0100005 to 157.407").
  std::string sigma_span() const;

 private:
  const ProcessKind* kind_ = nullptr;
  ProcessParams params_;
  double time_scale_ = 1.0;
  double shift_ = 1.0;
  bool quantize_ = false;
};

std::vector<std::string> process_names();
std::vector<std::string> beta_schedule_names();

// ᾱ_i, i = 0 … steps − 1, of a named beta schedule ("linear" and "scaled_linear" from
// `start` to `end`; "cosine": Nichol & Dhariwal 2021, betas capped at 0.999), in double.
std::vector<double> alphas_cumprod(const std::string& schedule, double start, double end, int64_t steps);

}  // namespace diffode

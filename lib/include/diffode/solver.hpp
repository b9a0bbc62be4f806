#pragma once
// The solver registry: name -> solver function over a precomputed sigma grid.
// Solvers see only the denoiser D(x̃, σ̃), the grid and the state (DESIGN.md §2, §4).
#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <vector>

namespace diffode {

using Tensor = at::Tensor;
// A strictly decreasing sigma_tilde grid sigma_0 > ... > sigma_N (N intervals).
using Grid = std::vector<double>;

// What a solver sees of the model: the denoiser D(x̃, σ̃) of DESIGN.md §2.
// At σ̃ = +inf (a flow model at t = 1) the argument is ε = x̃/σ̃ instead of x̃.
class Denoiser {
 public:
  virtual ~Denoiser() = default;
  virtual Tensor denoise(const Tensor& x, double sigma) = 0;
};

// v(x̃, σ̃) = (x̃ − D(x̃, σ̃)) / σ̃: the probability-flow ODE's velocity (= ε̂).
Tensor velocity(Denoiser& den, const Tensor& x, double sigma);

struct SolverOptions {
  bool afs = false;   // analytical first step: d_0 = x / sqrt(1 + σ_0²), no NFE
  int max_order = 0;  // multistep order cap; 0 = the solver's default
};

// Called after each grid interval i (0-based) is completed.
using StepCallback = std::function<void(int)>;

// Integrates from x at grid.front() to grid.back() and returns the final state.
// grid.front() is finite; grid.back() may be 0.
using SolverFn = Tensor (*)(Denoiser& den, Tensor x, const Grid& grid, const SolverOptions& opt,
                            const StepCallback& on_step);

struct SolverInfo {
  std::string name;
  std::string description;  // with the paper it follows
  std::string nfe_rule;     // NFE as a function of the number of steps N
  int order;                // global convergence order
  int default_max_order;    // 0: max_order does not apply to this solver
  SolverFn fn;
};

// Every solver, in the order `diffode solvers` lists them.
const std::vector<SolverInfo>& solvers();
std::vector<std::string> solver_names();
// Throws InputError naming the valid solvers (and the closest one) for an unknown name.
const SolverInfo& find_solver(const std::string& name);

}  // namespace diffode

#pragma once
// The key table of each config section (internal to diffode::runs; config_tables.cpp).
#include <string>
#include <vector>

#include "config_keys.hpp"
#include "diffode/runs/config.hpp"

namespace diffode::config_table {

const std::vector<Field<ModelConfig>>& model_fields();
// with_steps: the config's solver (steps and nfe); without: a compared solver's.
const std::vector<Field<SolverConfig>>& solver_fields(bool with_steps);
const std::vector<Field<ScheduleConfig>>& schedule_fields();
const std::vector<Field<SamplingConfig>>& sampling_fields();
const std::vector<Field<DistillConfig>>& distill_fields();
const std::vector<Field<TuneConfig>>& tune_fields();
const std::vector<Field<EvalConfig>>& eval_fields();
const std::vector<Field<ReferenceConfig>>& reference_fields();
const std::vector<Field<OutputConfig>>& output_fields();
// A schedule parameter (rho, sigmas, beta_min, ...): one a schedule takes or refuses by name.
bool is_schedule_param(const std::string& key);

// Why `info` has no "time" space, naming the solvers that have one.
std::string no_time_space(const SolverInfo& info);

}  // namespace diffode::config_table

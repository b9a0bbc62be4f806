#pragma once
// `--shard`: a shard given by hand, or this task's shard of a Slurm array job or a
// Kubernetes indexed job, read from the cluster's environment (DESIGN.md §7). The library
// takes the resulting Shard and never reads the environment itself.
#include <string>

#include "diffode/runs/run.hpp"

namespace diffode::cli {

// "i/n" (0 <= i < n); "auto": Slurm's SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN) of
// SLURM_ARRAY_TASK_COUNT; "auto/n": JOB_COMPLETION_INDEX (Kubernetes), else
// SLURM_ARRAY_TASK_ID, of n. InputError naming what is missing or wrong.
Shard parse_shard(const std::string& text);

}  // namespace diffode::cli

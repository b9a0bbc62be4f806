#pragma once
// What the CLI prints as markdown (DESIGN.md §7): a comparison's tables.
#include <string>

#include "diffode/runs/compare.hpp"

namespace diffode::cli {

// A summary (RMSE, and FD with `eval`, per solver × target NFE) and a table of every cell
// (NFE, RMSE, max error, PSNR, FD, time), under a line on the reference and the seeds.
std::string compare_markdown(const CompareResult& compare);

}  // namespace diffode::cli

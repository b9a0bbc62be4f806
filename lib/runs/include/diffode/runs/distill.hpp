#pragma once
// `diffode distill` (DESIGN.md §4): an AMED step predictor trained against a teacher solver
// through the frozen model.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>

#include "diffode/runs/config.hpp"

namespace diffode {

// Reports distillation progress: iteration done, total, last training loss, best validation loss.
using DistillProgressFn = std::function<void(int64_t it, int64_t total, double loss, double best_val)>;

// `diffode distill`: trains the predictor of cfg's AMED solver against cfg.distill's teacher
// and writes the best (lowest validation loss) to `out` whenever it improves. A predictor
// already at `out` for the same use is continued from. Returns its metadata.
nlohmann::json run_distill(const Config& cfg, const std::filesystem::path& out,
                           const DistillProgressFn& progress = nullptr);

}  // namespace diffode

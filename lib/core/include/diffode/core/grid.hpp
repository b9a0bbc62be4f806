#pragma once
// The σ̃ grid every schedule makes and every solver walks.
#include <vector>

namespace diffode {

// A strictly decreasing sigma_tilde grid sigma_0 > ... > sigma_N (N intervals).
using Grid = std::vector<double>;

}  // namespace diffode

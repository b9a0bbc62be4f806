// Compiled as a core source: a core file may not include a runs header (must not build).
#include "diffode/core/error.hpp"
#include "diffode/runs/config.hpp"

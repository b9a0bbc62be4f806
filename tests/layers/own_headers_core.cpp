// The control of the violation checks: compiled as a core source, core headers build.
#include "diffode/core/error.hpp"
#include "diffode/core/grid.hpp"

// The control of the violation checks: compiled as an io source, io and core headers build.
#include "diffode/core/error.hpp"
#include "diffode/io/npy.hpp"

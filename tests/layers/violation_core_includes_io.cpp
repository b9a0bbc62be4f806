// Compiled as a core source: a core file may not include an io header (must not build).
#include "diffode/core/error.hpp"
#include "diffode/io/npy.hpp"

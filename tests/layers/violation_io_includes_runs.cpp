// Compiled as an io source: an io file may not include a runs header (must not build).
#include "diffode/io/npy.hpp"
#include "diffode/runs/run.hpp"

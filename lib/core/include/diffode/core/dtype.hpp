#pragma once
// Floating-point types by the names configs and metadata use for them.
#include <c10/core/ScalarType.h>

#include <string>

namespace diffode {

// "float32", "float64", "float16" or "bfloat16" -> the dtype; InputError naming the valid
// names otherwise.
at::ScalarType parse_dtype(const std::string& name);

}  // namespace diffode

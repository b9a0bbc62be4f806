#include "diffode/core/dtype.hpp"

#include "diffode/core/error.hpp"

namespace diffode {

at::ScalarType parse_dtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "float16") return at::kHalf;
  if (name == "bfloat16") return at::kBFloat16;
  throw InputError(unknown_name_message("dtype", name, {"float32", "float64", "float16", "bfloat16"}));
}

}  // namespace diffode

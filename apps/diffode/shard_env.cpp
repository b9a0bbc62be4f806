#include "shard_env.hpp"

#include <cstdlib>
#include <optional>

#include "diffode/error.hpp"

namespace diffode::cli {

namespace {

std::optional<long> env_long(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end) throw InputError("--shard: environment variable " + std::string(name) + "='" + v + "' is not an integer");
  return x;
}

long parse_count(const std::string& text, const std::string& what) {
  char* end = nullptr;
  const long x = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end) throw InputError("--shard '" + what + "': '" + text + "' is not an integer");
  return x;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  const std::string first = text.substr(0, slash);
  long index = 0, count = 0;
  if (first == "auto") {
    if (slash == std::string::npos) {
      const auto id = env_long("SLURM_ARRAY_TASK_ID"), n = env_long("SLURM_ARRAY_TASK_COUNT");
      if (!id || !n)
        throw InputError("--shard auto: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are not set (not a Slurm array "
                         "job); give --shard I/N, or --shard auto/N with JOB_COMPLETION_INDEX");
      index = *id - env_long("SLURM_ARRAY_TASK_MIN").value_or(0);
      count = *n;
    } else {
      count = parse_count(text.substr(slash + 1), text);
      const auto id = env_long("JOB_COMPLETION_INDEX");
      const auto slurm = env_long("SLURM_ARRAY_TASK_ID");
      if (!id && !slurm)
        throw InputError("--shard " + text + ": neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID is set");
      index = id ? *id : *slurm - env_long("SLURM_ARRAY_TASK_MIN").value_or(0);
    }
  } else {
    if (slash == std::string::npos) throw InputError("--shard '" + text + "': expected I/N (e.g. 0/4), auto or auto/N");
    index = parse_count(first, text);
    count = parse_count(text.substr(slash + 1), text);
  }
  if (count < 1) throw InputError("--shard " + text + ": the number of shards must be >= 1, got " + std::to_string(count));
  if (index < 0 || index >= count)
    throw InputError("--shard " + text + ": shard index " + std::to_string(index) + " is outside [0, " +
                     std::to_string(count - 1) + "]");
  return {static_cast<int>(index), static_cast<int>(count)};
}

}  // namespace diffode::cli

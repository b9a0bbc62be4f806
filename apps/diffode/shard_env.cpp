#include "shard_env.hpp"

#include <cerrno>
#include <cstdlib>
#include <optional>

#include "diffode/core/error.hpp"

namespace diffode::cli {

namespace {


// An integer in [-kMaxShards, kMaxShards] (range checks name the limits later), else nullopt.
std::optional<long long> bounded_integer(const std::string& text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const long long x = std::strtoll(text.c_str(), &end, 10);
  if (*end || errno == ERANGE || x < -kMaxShards || x > kMaxShards) return std::nullopt;
  return x;
}

std::optional<long long> env_long(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  const auto x = bounded_integer(v);
  if (!x)
    throw InputError("--shard: environment variable " + std::string(name) + "='" + std::string(v).substr(0, 40) +
                     "' is not an integer in [0, " + std::to_string(kMaxShards) + "]");
  return x;
}

long long parse_count(const std::string& text, const std::string& what) {
  const auto x = bounded_integer(text);
  if (!x)
    throw InputError("--shard '" + what.substr(0, 80) + "': '" + text.substr(0, 40) + "' is not an integer in [0, " +
                     std::to_string(kMaxShards) + "]");
  return *x;
}

}  // namespace

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  const std::string first = text.substr(0, slash);
  long long index = 0, count = 0;
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
  if (count < 1 || count > kMaxShards)
    throw InputError("--shard " + text + ": the number of shards must be in [1, " + std::to_string(kMaxShards) +
                     "], got " + std::to_string(count));
  if (index < 0 || index >= count)
    throw InputError("--shard " + text + ": shard index " + std::to_string(index) + " is outside [0, " +
                     std::to_string(count - 1) + "]");
  return {static_cast<int>(index), static_cast<int>(count)};
}

}  // namespace diffode::cli

#pragma once
// Error kinds shared by every layer and the CLI, and the text of names in messages.
#include <stdexcept>
#include <string>
#include <vector>

namespace diffode {

// Bad input from the user (config, model, paths, numbers): the CLI exits with code 2.
// The message names what is wrong and where; it is shown to the user as is.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bad input in a JSON document (a config, metadata): `source` names it, `pointer` is the JSON
// pointer and `detail` what is wrong; what() is "source: pointer: detail".
class ConfigError : public InputError {
 public:
  ConfigError(std::string source, std::string pointer, std::string detail);
  const std::string& source() const { return source_; }
  const std::string& pointer() const { return pointer_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string source_, pointer_, detail_;
};

// The model returned NaN or Inf while sampling (ModelDenoiser::check_finite): bad input too
// (exit 2), told apart so that `diffode compare` can record the cell as diverged.
class NonFiniteError : public InputError {
 public:
  using InputError::InputError;
};

// A file that cannot be written (a full disk, no permission): the CLI exits with code 1
// and says so; complete batches of a run are kept for a re-run.
class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Text for a message, cut to max_chars with its full length said.
std::string text_excerpt(const std::string& text, size_t max_chars = 200);

// The registered name closest to `name` (edit distance), or "" if none is close.
std::string nearest_name(const std::string& name, const std::vector<std::string>& candidates);

// "unknown solver 'hen' (did you mean 'heun'?); valid: euler, heun, ..."
std::string unknown_name_message(const std::string& what, const std::string& name,
                                 const std::vector<std::string>& candidates);

}  // namespace diffode

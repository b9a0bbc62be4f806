#include "torchscript.hpp"

#include <sstream>

#include "diffode/core/error.hpp"
#include "diffode/core/input.hpp"

namespace diffode {

namespace fs = std::filesystem;

torch::jit::Module load_torchscript(const fs::path& path, const std::string& role, const std::string& kind,
                                    c10::Device device, torch::jit::ExtraFilesMap* extra) {
  const std::string file = path.string();
  if (const std::string problem = input_file_problem(path); !problem.empty())
    throw InputError(role + " " + text_excerpt(file) + ": " + problem +
                     (problem == "is a directory" ? ", not a " + kind : ""));
  try {
    if (extra) return torch::jit::load(file, device, *extra);
    return torch::jit::load(file, device);
  } catch (const c10::Error& e) {
    throw InputError(role + " " + file + ": not a loadable TorchScript archive: " + first_line(e.what_without_backtrace()));
  }
}

std::string error_text(const std::exception& e) {
  if (auto* ce = dynamic_cast<const c10::Error*>(&e)) return ce->what_without_backtrace();
  return e.what();
}

std::string shape_text(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  return o.str() + "]";
}

std::string first_line(const std::string& s) {
  const auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

std::string last_line(const std::string& text) {
  size_t end = text.find_last_not_of(" \n");
  if (end == std::string::npos) return text;
  const size_t newline = text.rfind('\n', end);
  const size_t begin = newline == std::string::npos ? 0 : newline + 1;
  return text.substr(begin, end + 1 - begin);
}


at::Tensor reduce_feature(const at::Tensor& f) {
  if (f.dim() <= 2) return f.reshape({f.size(0), -1});
  return f.mean(1).flatten(1);
}

}  // namespace diffode

#pragma once
// TorchScript archives as core reads them (internal to diffode::core): one load with its
// file check and message for models, AMED predictors and feature models; the text of
// LibTorch's errors; calls run as scripted on the CPU.
#include <ATen/core/Tensor.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <exception>
#include <filesystem>
#include <optional>
#include <string>

namespace diffode {

// Loads `path` onto `device`, reading the extra files named in `extra` (when given). The
// path is checked first (missing, a directory, not a regular file) and every failure is an
// InputError "<role> <path>: ...", e.g. "predictor p.pt: not a loadable TorchScript archive".
// `kind` names the file a directory is not ("TorchScript file", "predictor file").
torch::jit::Module load_torchscript(const std::filesystem::path& path, const std::string& role,
                                    const std::string& kind, c10::Device device,
                                    torch::jit::ExtraFilesMap* extra = nullptr);

// An exception's message, without LibTorch's backtrace.
std::string error_text(const std::exception& e);
std::string first_line(const std::string& s);
// The last non-empty line of a LibTorch error (TorchScript's own traceback comes first).
std::string last_line(const std::string& text);
// "[2, 3, 4]"
std::string shape_text(at::IntArrayRef s);

// TorchScript's profiling executor spends a module's first two calls profiling and
// re-optimising it for the input shapes: 54 + 14 ms on gmm2d at 4096, 125 + 37 ms on
// fmnist_exact at 64, against 3 + 1 and 51 + 20 ms unoptimised. On CPU, with no fuser, the
// optimised graph is no faster once warm and its outputs are the same bits (README,
// Performance), so every call of a CPU module runs it as scripted; CUDA modules keep the
// optimiser (and its fusers). The setting is thread-local and restored after the call.
class AsScriptedOnCpu {
 public:
  explicit AsScriptedOnCpu(c10::Device device) {
    if (device.is_cpu()) guard_.emplace(false);
  }

 private:
  std::optional<torch::jit::GraphOptimizerEnabledGuard> guard_;
};

// [B, C, H, W] (or any [B, C, ...]) -> mean over C, flattened; [B, F] as it is.
at::Tensor reduce_feature(const at::Tensor& f);

}  // namespace diffode

#pragma once
// The contract check at load (internal to diffode::core): one call of forward and of
// forward_with_features on a probe batch of 2 at mid-range time.
#include <ATen/core/TensorBody.h>
#include <torch/script.h>

#include <cstdint>
#include <string>
#include <vector>

#include "diffode/core/model_meta.hpp"

namespace diffode {

struct Probe {
  torch::jit::Module& module;
  const ModelMeta& meta;
  at::TensorOptions opts;
  std::string file;
  std::vector<int64_t> shape() const;  // 2 x sample_shape
  double t_mid() const;                // the network's time argument there
};

// forward(x, t[, y]): its arguments, and an output of x's shape and a floating dtype.
void probe_forward(const Probe& p);
// forward_with_features(x, t[, y]) -> (output, feature): the width of the reduced feature.
int64_t probe_features(const Probe& p);

}  // namespace diffode

#pragma once
// The files quality is measured on: samples (a run folder or a .npy) and reference
// feature statistics.
#include <filesystem>
#include <string>

#include "diffode/core/quality.hpp"

namespace diffode {

// Samples to judge: a run directory (samples.npy; labels and num_classes from its
// manifest.json) or a bare float32 .npy file [N, *sample_shape].
SampleSet load_samples(const std::filesystem::path& run_or_npy);

// Reference statistics file (JSON): {"feature_dim", "count", "mean": [F], "cov": [[F]xF],
// "feature_model_sha256" (optional)}. A corrupt or inconsistent file is an InputError.
ReferenceStats load_reference_stats(const std::filesystem::path& path);
// Written whole or not at all.
void save_reference_stats(const std::filesystem::path& path, const FeatureStats& stats,
                          const std::string& feature_model_sha256);

}  // namespace diffode

#!/usr/bin/env bash
# Installs a built tree (cmake --install) into a temporary prefix, builds examples/consumer
# against it with find_package(diffode) alone, and runs it on the Gaussian model.
#   bash scripts/check_install.sh [BUILD_DIR]   (default build/; run by ctest and CI)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix/install" >/dev/null
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S examples/consumer -B "$prefix/consumer" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix/install" \
  "${launcher[@]}" >/dev/null
cmake --build "$prefix/consumer" -j2 >/dev/null
echo "installed: $(cd "$prefix/install" && find . -name '*.a' -o -name 'diffodeConfig.cmake' | sort | tr '\n' ' ')"
"$prefix/consumer/sample_gauss" models/gauss.pt dpmpp2m 10

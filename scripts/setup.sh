#!/usr/bin/env bash
# Installs what diffode needs from Debian's packages (non-interactive, idempotent) and
# builds it into build/. Usage: bash scripts/setup.sh   (CI=true: warnings are errors)
#        bash scripts/setup.sh --packages P...   (only installs the packages P, if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ccache pkg-config
          libtorch-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libstb-dev libgtest-dev
          libplplot-dev plplot-driver-cairo fonts-dejavu-core
          python3-torch python3-numpy dataset-fashion-mnist)
only_packages=false
if [ "${1:-}" = "--packages" ]; then
  shift
  packages=("$@")
  only_packages=true
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

$only_packages && exit 0

werror=OFF; [ "${CI:-}" = "true" ] && werror=ON
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDIFFODE_WERROR="$werror" >/dev/null
cmake --build build -j2

#!/usr/bin/env bash
# Measures solver.space per process (README, Solvers): the shipped configs
# configs/fmnist_exact_space.json (edm, where sigma and time are the same variable),
# configs/gauss_vp_space.json (vp, Gaussian data), and the same exact Fashion-MNIST mixture
# denoiser as fmnist_exact.pt exported as a vp / eps model (written to a temporary folder,
# not shipped), each compared in both spaces at 5, 9 and 15 NFE.
# Usage: bash scripts/space_by_process.sh [OUT_DIR]   (default runs/space)
set -euo pipefail
cd "$(dirname "$0")/.."
diffode=${DIFFODE:-./build/diffode}
out=${1:-runs/space}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$work/fmnist_exact_vp.pt" <<'PY'
import json, sys
import torch
sys.path.insert(0, "scripts")
import make_models as mm
images, _ = mm.fmnist_subset()
k = len(images)
means = torch.from_numpy(images.reshape(k, -1).copy())
module = mm.GaussianMixture(means, torch.full([k], mm.FMNIST_S), torch.ones(k), [1, 28, 28],
                            "vp", "eps", scale=1.0 / 127.5, offset=-1.0)
meta = mm.make_meta("vp", "eps", [1, 28, 28], [-1.0, 1.0],
                    "fmnist_exact's mixture as an exact vp/eps model (scripts/space_by_process.sh)")
mm.save_scripted(module, sys.argv[1], json.dumps(meta))
PY
"$diffode" compare -c configs/fmnist_exact_space.json -o "$out/edm"
"$diffode" compare -c configs/gauss_vp_space.json -o "$out/vp_gauss"
"$diffode" compare -c configs/fmnist_exact_space.json --set model.path="$work/fmnist_exact_vp.pt" -o "$out/vp_fmnist"

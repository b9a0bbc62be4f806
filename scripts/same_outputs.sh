#!/usr/bin/env bash
# Checks that a change keeps diffode's outputs byte for byte: runs every shipped config
# (num_samples cut down where a config is slow), a sharded run and its merge, and a small
# compare with two diffode binaries, and compares samples.npy, manifest.json (less the
# version) and compare.csv (less its time column).
#
#   bash scripts/same_outputs.sh REV [NEW_BIN]    # REV: a commit, built into build-ref/ (ccache)
#   bash scripts/same_outputs.sh OLD_BIN NEW_BIN  # two binaries already built
#
# NEW_BIN defaults to build/diffode. Exit 0 when every output is identical, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
old=${1:?usage: same_outputs.sh REV|OLD_BIN [NEW_BIN]}
new=${2:-$root/build/diffode}
if [ ! -x "$old" ]; then
  rev=$(git rev-parse --verify "$old^{commit}")
  src=$root/build-ref/src
  rm -rf "$src" && mkdir -p "$src"
  git archive "$rev" | tar -x -C "$src"
  cmake -S "$src" -B "$root/build-ref/build" -DCMAKE_BUILD_TYPE=Release -DDIFFODE_BUILD_TESTS=OFF >/dev/null
  cmake --build "$root/build-ref/build" -j2 --target diffode
  old=$root/build-ref/build/diffode
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DIFFODE_CACHE=$work/cache   # the compare reference is computed, not read from a cache

# name|config|extra arguments (the sample counts cut down so that the check takes minutes)
small="--set sampling.num_samples=6 --set sampling.batch_size=4"
runs=(
  "fmnist_exact|configs/fmnist_exact.json|$small"
  "fmnist_flow|configs/fmnist_flow.json|$small"
  "fmnist_flow_amed5|configs/fmnist_flow_amed5.json|$small"
  "fmnist_flow_nfe|configs/fmnist_flow_nfe.json|$small"
  "fmnist_flow_quality|configs/fmnist_flow_quality.json|--set sampling.num_samples=6 --set sampling.batch_size=3"
  "fmnist_flow_compare_solver|configs/fmnist_flow_compare.json|$small"
  "gauss|configs/gauss.json|"
  "gauss_dpmpp3m|configs/gauss.json|--set solver.name=dpmpp3m --set schedule.name=logsnr"
  "gmm2d_cond_random|configs/gmm2d.json|--set model.path=models/gmm2d_cond.pt --set sampling.labels=random --set sampling.num_samples=300 --set sampling.batch_size=128"
  "gmm2d|configs/gmm2d.json|--set sampling.num_samples=1000 --set sampling.batch_size=300"
)

canonical_json() {  # FILE: its JSON with every number a float, keys sorted, the version left out
  python3 -c '
import json, sys
def norm(v):
    if isinstance(v, bool) or v is None or isinstance(v, str): return v
    if isinstance(v, (int, float)): return float(v)
    if isinstance(v, list): return [norm(e) for e in v]
    return {k: norm(e) for k, e in v.items() if k != "diffode_version"}
print(json.dumps(norm(json.load(open(sys.argv[1]))), sort_keys=True))' "$1"
}

digest() {  # BIN LABEL: digests of every run's outputs, one line each
  local bin=$1 out=$work/$2
  for r in "${runs[@]}"; do
    IFS='|' read -r name cfg extra <<<"$r"
    # shellcheck disable=SC2086
    "$bin" sample -c "$cfg" $extra -o "$out/$name" 2>/dev/null >/dev/null
    echo "$name samples.npy $(sha256sum <"$out/$name/samples.npy" | cut -c1-64)"
    echo "$name manifest.json $(canonical_json "$out/$name/manifest.json" | sha256sum | cut -c1-64)"
  done
  for i in 0 1 2; do
    "$bin" sample -c configs/gauss.json --set sampling.num_samples=40 --set sampling.batch_size=8 --shard "$i/3" \
      -o "$out/sharded" 2>/dev/null >/dev/null
  done
  "$bin" merge "$out/sharded" -o "$out/merged" 2>/dev/null >/dev/null
  echo "merged samples.npy $(sha256sum <"$out/merged/samples.npy" | cut -c1-64)"
  "$bin" compare -c configs/fmnist_flow_compare.json --set sampling.num_samples=6 --set sampling.batch_size=4 \
    --set 'compare.nfe=[3,5]' --set compare.reference.steps=40 --set compare.reference.tolerance=1 \
    -o "$out/compare" 2>/dev/null >/dev/null
  # compare.csv less its time_s column (found by its header: columns were added over time)
  local col
  col=$(head -1 "$out/compare/compare.csv" | tr ',' '\n' | grep -nx time_s | cut -d: -f1)
  echo "compare compare.csv $(cut -d, -f"$col" --complement "$out/compare/compare.csv" | sha256sum | cut -c1-64)"
}

digest "$old" old >"$work/old.txt"
digest "$new" new >"$work/new.txt"
if diff "$work/old.txt" "$work/new.txt"; then
  echo "same outputs: $(wc -l <"$work/new.txt") files identical"
  cat "$work/new.txt"
else
  echo "outputs differ (< $old, > $new)" >&2
  exit 1
fi

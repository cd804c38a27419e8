#!/usr/bin/env bash
# Issue 14's demonstration (docs/benchmarks-log.md, "High-D denoising"): N synthetic SIZE x SIZE x 3 u8
# images with a 1/f² spectrum (recalign-synth), then
#   recalign denoise --method nystrom --rank 256 --noise mask:patch=16x16,ratio=0.75,scheme=fixed
#                    --noise mask:patch=16x16,ratio=0.75 --noise gaussian:sigma=0.1
# end to end with its peak RSS (/usr/bin/time -v) and the wall time of each pass, then the
# same images box-averaged to 32x32 and 64x64, sketch route against the exact route (patches
# 1, 2, 4, 8 x ratios .25, .5, .75, .9 at 32x32; the largest |difference| of the relative
# differences for K <= 64, the impacts, and the trade-off losses).
#
#   tools/bench/demo_highd.sh [--rows N] [--size S] [--cache DIR] [--build DIR] [--skip-exact64] [--quick]
#
# Defaults: 20000 rows, S = 224 (D = 150,528; ~3 GB of raw u8 in the cache), build ./build.
# The full run reads ~3 GB several times: run it alone on the machine. A reduced run proves
# the script: e.g. --rows 500 --size 64 (64 is downsampled by 2 and 1).
# The comparisons here pass every noise to one sketch command: its verification space (U plus
# 256 + 64 directions per masking noise) then covers most of R^D at 32x32x3 and agrees almost
# trivially. The test of the method, one noise at a time: tools/bench/accuracy_highd.py.
set -euo pipefail
rows=20000 size=224 cache="${XDG_CACHE_HOME:-$HOME/.cache}/recalign-highd" build=build skip64=0 quick=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --rows) rows=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --skip-exact64) skip64=1; shift ;;
    --quick) quick=1; shift ;;  # 32x32: one ratio per patch size instead of all 16 pairs
    *) echo "demo_highd.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
synth=$build/tools/synth/recalign-synth recalign=$build/tools/recalign/recalign
[[ -x $synth && -x $recalign ]] || { echo "demo_highd.sh: build first (ninja -C $build)" >&2; exit 2; }
mkdir -p "$cache"
out=$cache/results; mkdir -p "$out"

# Images of side `side` (the SIZE images box-averaged), generated once per (rows, size, side).
images() {
  local side=$1
  local f=$cache/synth_${rows}_${size}_to_${side}
  if [[ ! -f $f.u8 ]]; then
    local factor; factor=$(python3 -c "print($size / $side)")
    "$synth" --rows "$rows" --height "$size" --width "$size" --channels 3 --classes 10 --seed 1 \
      --downsample "$factor" --output "$f.u8" --labels "$f.idx" 2> "$f.synth.log"
  fi
  echo "$f"
}
data_args() {  # images, side
  echo --images "$1.u8" --format raw --raw-shape "$rows,$(( $2 * $2 * 3 ))" --raw-dtype u8 --labels "$1.idx" \
       --image-shape "$2,$2,3"
}

echo "== $rows images of ${size}x${size}x3 (D = $(( size * size * 3 ))), cache $cache"
big=$(images "$size")
patch=16; (( size < 64 )) && patch=4
/usr/bin/time -v "$recalign" denoise $(data_args "$big" "$size") --method nystrom --rank 256 \
  --noise "mask:patch=${patch}x${patch},ratio=0.75,scheme=fixed" --noise "mask:patch=${patch}x${patch},ratio=0.75" \
  --noise gaussian:sigma=0.1 --json > "$out/denoise_$size.json" 2> "$out/denoise_$size.time"
grep -E "wall seconds per pass|Maximum resident|Elapsed \(wall" "$out/denoise_$size.time"

# Sketch vs exact on the downsampled images.
compare() {  # side, noises...
  local side=$1; shift
  local f; f=$(images "$side")
  local noise_args=(); for n in "$@"; do noise_args+=(--noise "$n"); done
  /usr/bin/time -v "$recalign" denoise $(data_args "$f" "$side") "${noise_args[@]}" --noise gaussian:sigma=0.1 \
    --json > "$out/exact_$side.json" 2> "$out/exact_$side.time"
  /usr/bin/time -v "$recalign" denoise $(data_args "$f" "$side") "${noise_args[@]}" --noise gaussian:sigma=0.1 \
    --method nystrom --rank 256 --passes 2 --json > "$out/sketch_$side.json" 2> "$out/sketch_$side.time"
  for lam in tradeoff; do
    "$recalign" tradeoff $(data_args "$f" "$side" | sed 's/--image-shape [^ ]*//') --lambda 0,1,10 --k 64 --json --quiet \
      > "$out/tradeoff_exact_$side.json"
    "$recalign" tradeoff $(data_args "$f" "$side" | sed 's/--image-shape [^ ]*//') --lambda 0,1,10 --k 64 --json --quiet \
      --method nystrom --rank 256 --passes 2 > "$out/tradeoff_sketch_$side.json"
  done
  python3 - "$out" "$side" <<'PY'
import json, re, sys
out, side = sys.argv[1], sys.argv[2]
e, s = (json.load(open(f"{out}/{k}_{side}.json")) for k in ("exact", "sketch"))
print(f"-- {side}x{side}x3: sketch nystrom 256, 2 passes + verification ({s['sketch_error']['verification_columns']} "
      f"directions) vs exact, K <= 64")
for a, b in zip(e["noises"], s["noises"]):
    k = min(64, len(a["relative"]), len(b["relative"]))
    d = max(abs(x - y) for x, y in zip(a["relative"][:k], b["relative"][:k]))
    signs = sum(1 for x, y in zip(a["relative"][:k], b["relative"][:k]) if abs(x) > 5e-3 and (x > 0) != (y > 0))
    i = max(abs(x - y) for x, y in zip(a["impact_normalised"][:k], b["impact_normalised"][:k]))
    print(f"   {a['spec']:45s} |Δ relative| <= {d:.2e}  sign flips {signs}  |Δ impact/K| <= {i:.2e}")
te, ts = (json.load(open(f"{out}/tradeoff_{k}_{side}.json")) for k in ("exact", "sketch"))
for a, b in zip(te, ts):
    print(f"   tradeoff λ = {a['lambda']:g}, K = 64: sketch loss / exact loss - 1 = {b['loss'] / a['loss'] - 1:.2e}")
for k in ("exact", "sketch"):
    t = open(f"{out}/{k}_{side}.time").read()
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1)
    print(f"   {k}: wall {wall}, peak RSS {rss / 1024:.0f} MiB")
PY
}
noises32=(); for p in 1 2 4 8; do for r in 0.25 0.5 0.75 0.9; do noises32+=("mask:patch=${p}x${p},ratio=$r"); done; done
(( quick )) && noises32=("mask:patch=1x1,ratio=0.25" "mask:patch=2x2,ratio=0.5" "mask:patch=4x4,ratio=0.75" "mask:patch=8x8,ratio=0.9")
if (( size % 32 == 0 || size == 224 )); then compare 32 "${noises32[@]}"; fi
if (( ! skip64 )) && (( size >= 64 )); then compare 64 "mask:patch=8x8,ratio=0.75" "mask:patch=4x4,ratio=0.25"; fi

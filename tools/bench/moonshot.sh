#!/bin/bash
# The moonshot of issue 17 item 6: ImageNet-1k scale in one pass. recalign-synth streams
# 224x224x3 u8 rows (1/f² images, one class pattern each) into `recalign align --method
# nystrom` through a pipe (--images -), which reads them once, checkpoints every EVERY rows
# and never holds more than a batch of rows. Prints, each from its own measurement:
#   the generator alone (rows/s to /dev/null, wall and CPU: is it the bottleneck?),
#   the whole pipeline's wall time, recalign's own peak RSS and CPU time (GNU time),
#   the checkpoint's size (the state), and the extrapolation of the wall time to N_FULL rows.
# Usage:  tools/bench/moonshot.sh [ROWS]          (default: all 1,281,167; e.g. 20000 to extrapolate)
# Environment: BUILD (build), COMMAND (align; spectrum: the label-free route, whose state is the
# sketch alone, without align's exact C x D class sums), RANK (100), CLASSES (1000, like
# ImageNet), EVERY (100000), BATCH (500), PRECISION (f32-kernels), SEED (0),
# TMP (/tmp/recalign_moonshot), EXTRA (more recalign options), OPENBLAS_THREAD_TIMEOUT (4: idle
# OpenBLAS threads sleep after 2^4 cycles instead of spinning for 2^28 and taking the generator's
# core; README, "Pipes"). Both get --no-verify: the
# verification pass (align's, and spectrum's since b5ecd67) would read the pipe a second time
# (refused up front).
set -euo pipefail
ROWS=${1:-1281167}
N_FULL=1281167
BUILD=${BUILD:-build}
RANK=${RANK:-100}
CLASSES=${CLASSES:-1000}
EVERY=${EVERY:-100000}
BATCH=${BATCH:-500}
PRECISION=${PRECISION:-f32-kernels}
SEED=${SEED:-0}
TMP=${TMP:-/tmp/recalign_moonshot}
EXTRA=${EXTRA:-}
COMMAND=${COMMAND:-align}
export OPENBLAS_THREAD_TIMEOUT=${OPENBLAS_THREAD_TIMEOUT:-4}
case "$COMMAND" in align | spectrum) ;; *) echo "moonshot.sh: COMMAND must be align or spectrum, not '$COMMAND'" >&2; exit 2 ;; esac
H=224 W=224 CH=3
D=$((H * W * CH))
SYNTH=$BUILD/tools/synth/recalign-synth
RECALIGN=$BUILD/tools/recalign/recalign
for t in "$SYNTH" "$RECALIGN" /usr/bin/time; do [ -x "$t" ] || { echo "moonshot.sh: $t not found (build first)" >&2; exit 2; }; done
mkdir -p "$TMP"
LABELS=$TMP/labels_$ROWS.npy CKPT=$TMP/moonshot_${COMMAND}_$ROWS.ckpt OUT=$TMP/moonshot_${COMMAND}_$ROWS.json
rm -f "$CKPT"
ROUTE_ARGS=(--no-verify)
[ "$COMMAND" = align ] && ROUTE_ARGS=(--labels "$LABELS" --no-verify)
now() { date +%s.%N; }
echo "machine: nproc $(nproc), $(free -g | awk '/Mem:/ {print $2}') GiB; $(date -u '+%F %T UTC'); load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "recalign $COMMAND: rows $ROWS, D = $D, rank $RANK, classes $CLASSES, checkpoint every $EVERY, batch $BATCH, precision $PRECISION, $EXTRA"
echo "OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-unset} OPENBLAS_THREAD_TIMEOUT=$OPENBLAS_THREAD_TIMEOUT"

# Labels depend only on (seed, row, classes), not on the image size: a 1x1 run writes the same
# labels file in a fraction of a second, before the images stream (recalign opens it first).
"$SYNTH" --rows "$ROWS" --height 1 --width 1 --channels 1 --classes "$CLASSES" --seed "$SEED" \
    --output /dev/null --labels "$LABELS" 2>/dev/null

# The generator alone on a prefix (at most 20,000 rows): its rate bounds the pipeline's.
GEN_ROWS=$((ROWS < 20000 ? ROWS : 20000))
t0=$(now)
/usr/bin/time -f "%U %S" -o "$TMP/gen.time" "$SYNTH" --rows "$GEN_ROWS" --height $H --width $W --channels $CH \
    --classes "$CLASSES" --seed "$SEED" --output /dev/null --labels "$TMP/gen_labels.npy" 2>/dev/null
t1=$(now)
read -r gu gs < "$TMP/gen.time"
awk -v n="$GEN_ROWS" -v w="$(echo "$t1 - $t0" | bc)" -v c="$(echo "$gu + $gs" | bc)" 'BEGIN {
    printf "generator alone: %d rows in %.2f s wall (%.0f rows/s), %.2f s CPU (%.0f rows per CPU-second)\n", n, w, n / w, c, n / c }'

# The pipeline: every row generated, piped, read once.
t0=$(now)
"$SYNTH" --rows "$ROWS" --height $H --width $W --channels $CH --classes "$CLASSES" --seed "$SEED" \
    --output - --labels "$TMP/pipe_labels.npy" 2>"$TMP/synth.err" |
    /usr/bin/time -v -o "$TMP/recalign.time" "$RECALIGN" "$COMMAND" --images - --raw-shape "$ROWS,$D" "${ROUTE_ARGS[@]}" \
        --method nystrom --rank "$RANK" --precision "$PRECISION" --batch "$BATCH" --checkpoint "$CKPT" \
        --checkpoint-every "$EVERY" --json --quiet $EXTRA > "$OUT"
t1=$(now)
wall=$(echo "$t1 - $t0" | bc)
rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$TMP/recalign.time")
cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$TMP/recalign.time")
state=$(stat -c %s "$CKPT")
awk -v n="$ROWS" -v full="$N_FULL" -v w="$wall" -v r="$rss" -v c="$cpu" -v s="$state" 'BEGIN {
    printf "pipeline: %d rows in %.1f s wall (%.0f rows/s); recalign: peak RSS %.0f MiB, CPU %.1f s\n", n, w, n / w, r / 1024, c
    printf "state (checkpoint file): %.1f MB\n", s / 1e6
    printf "extrapolated to %d rows at this rate: %.1f min (goal <= 15 min; a linear extrapolation: fixed costs make it pessimistic at small n)\n", full, w * full / n / 60 }'
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

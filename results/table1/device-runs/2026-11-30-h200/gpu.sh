#!/usr/bin/env bash
# One device call: the CUDA tests, then the m = 50 Table 1 cells side by side on the GPU from a clean clone of
# the cells' commit, each stopped (SIGTERM: checkpoint, clean exit) at the deadline; everything packed into $OUT.
set -u
T0=$(date +%s)
REPO=$PWD
PY=${PY:-python3}
OUT=${OUT:-/tmp/out}
DEADLINE=${DEADLINE:-490}          # seconds after start when unfinished cells are stopped
STEPS=${STEPS:-50000}
EVAL=${EVAL:---k 5000 --large-k 50000 --large-k-images 10000}
CELLS=${CELLS:-200H-200H-784V-m50-relaxed 200H-200H-784V-m50-vimco 200H~784V-m50-relaxed 392V-240H-240H-392V-m50-relaxed}
W=/tmp/w
mkdir -p "$OUT" "$W/logs"
export PYTHONUNBUFFERED=1
el() { echo $(( $(date +%s) - T0 )); }
{
  nvidia-smi -L 2>&1; nproc
  $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
  command -v git || echo "no git"
} > "$W/logs/info.txt" 2>&1
cat "$W/logs/info.txt"

# the CUDA tests, from this working tree, beside the cells
( cd "$REPO" && PYTHONPATH=src:.dev/site timeout 240 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py \
    > "$W/logs/cuda_tests.log" 2>&1; echo "pytest rc=$?" >> "$W/logs/cuda_tests.log" ) &

# a clean clone of the cells' commit, with the data where the recorded command expects it
if command -v git >/dev/null; then
  git clone -q "$REPO/.dev/wt.bundle" "$W/concretelab" && git -C "$W/concretelab" log --oneline -1
  RESULTS=results/table1
else
  mkdir -p "$W/concretelab" && cp -r "$REPO/src" "$REPO/configs" "$W/concretelab/"
  RESULTS=../results-nogit
fi
cp -r "$REPO/.dev/shared" "$W/shared"
export PYTHONPATH="$W/concretelab/src:$REPO/.dev/site"

pids=()
for cell in $CELLS; do
  ( cd "$W/concretelab" && exec $PY -m concretelab reproduce table1 --cells "$cell" --steps "$STEPS" $EVAL \
      --data ../shared/data/binarized_mnist --eval-every 10000 --valid-k 1000 --threads 1 --out ../runs/table1 \
      --results "$RESULTS" > "$W/logs/$cell.log" 2>&1 ) &
  pids+=($!)
done
while :; do
  alive=0; for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  if [ "$(el)" -ge "$DEADLINE" ]; then
    echo "t=$(el)s deadline: stopping"; for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
    sleep 25; break
  fi
  sleep 15
  echo "t=$(el)s $(for c in $CELLS; do printf '%s:%s ' "${c%%-*}${c##*-m}" "$(tail -c 300 "$W/runs/table1/$c"*/metrics.jsonl 2>/dev/null | tail -1 | grep -o '"step": [0-9]*' | tr -dc 0-9)"; done)"
done
wait
echo "cells stopped at t=$(el)s"
cat "$W/logs/cuda_tests.log" 2>/dev/null | tail -15
for cell in $CELLS; do tail -4 "$W/logs/$cell.log"; done
mkdir -p "$W/logs/results" && cp "$W"/concretelab/results/table1/*.json "$W"/results-nogit/*.json "$W/logs/results/" 2>/dev/null
for cell in $CELLS; do
  d=$(cd "$W/runs/table1" && ls -d "$cell"-* 2>/dev/null | head -1)
  [ -n "$d" ] && tar -C "$W/runs/table1" -cf "$OUT/run-${cell//\~/_}.tar" "$d"
done
tar -C "$W" -czf "$OUT/logs.tar.gz" logs
ls -la "$OUT"; echo "done at t=$(el)s"

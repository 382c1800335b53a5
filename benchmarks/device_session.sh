#!/usr/bin/env bash
# One lent GPU session as one prepared call (docs/training.md "A lent GPU in one call"): the work the CPU
# machines cannot do, in the order of the developers' guide, inside a deadline.
#
#   bash benchmarks/device_session.sh --prepare      # here, on the CPU machine: fills .dev/ (ignored by git)
#   bash benchmarks/device_session.sh                # there, from the repository root, with .dev carried
#
# --prepare writes .dev/repo.bundle (HEAD, so that the cells run from a clean clone and record its commit),
# .dev/wheels (tomli-w, the one dependency the device image lacks), .dev/data (a copy of
# ../shared/data/binarized_mnist, which the device machine does not have) and lists .dev/ in .git/info/exclude.
#
# The session, each stage cut off by the time left (DEADLINE seconds from the start, default 540):
#   1. benchmarks/gpu.sh --quick: tests/test_cuda.py, then the replica/graph throughput table at m = 1
#      (QUICK=0: the whole table, m = 1 and 50, R up to 128);
#   2. the m = 50 cells of 200H-784V (Concrete and VIMCO) side by side, STEPS steps each (default 300000) with the
#      step as one CUDA graph (GRAPH=1), then -L_K (K, default 5000) and -L_LARGE_K (default 50000) on all 10,000
#      test images (LARGE_K_IMAGES), on the GPU: `concretelab reproduce table1` from a clean clone of the bundle.
#      Stopped at the deadline by SIGTERM, a cell saves its checkpoint; its run folder comes back either way.
# What comes back under $OUT (at most 8 files): session.log, gpu.tar.gz, results.tar.gz and runs-CELL.tar.gz.
# Unpack them into results/ here (results/table1/device-runs/DATE-GPU/, as for the call of 2026-11-30).
#
# Dry run on a CPU (checks the plumbing, not the numbers):
#   OUT=/tmp/dev-out PYTHON=.venv/bin/python GRAPH=0 STEPS=40 K=10 LARGE_K=20 LARGE_K_IMAGES=20 VALID_K=10 \
#       VALID_IMAGES=20 bash benchmarks/device_session.sh
set -uo pipefail
CELLS=(200H-784V-m50-relaxed 200H-784V-m50-vimco)

if [ "${1:-}" = "--prepare" ]; then
    set -e
    data=${DATA:-../shared/data/binarized_mnist}
    [ -z "$(git status --porcelain -- src configs)" ] || { echo "src/ or configs/ have uncommitted changes: commit first" >&2; exit 1; }
    mkdir -p .dev/wheels .dev/data
    grep -qx '/.dev/' .git/info/exclude 2>/dev/null || echo '/.dev/' >> .git/info/exclude
    rm -f .dev/repo.bundle && git bundle create -q .dev/repo.bundle HEAD
    python3 -m pip download -q --no-deps --only-binary=:all: -d .dev/wheels 'tomli-w>=1.0'
    cp "$data"/*.amat.gz "$data"/README.md .dev/data/
    echo "prepared .dev/ for $(git rev-parse --short HEAD): $(du -sh .dev | cut -f1); carry it: carry=[\".dev\"]"
    exit 0
fi

start=$(date +%s)
deadline=$((start + ${DEADLINE:-540}))
left() { echo $((deadline - $(date +%s))); }
out=${OUT:?set OUT to the folder whose files come back}
mkdir -p "$out"
exec > >(tee -a "$out/session.log") 2>&1
python=${PYTHON:-python3}
repo=$(pwd)
[ -f .dev/repo.bundle ] || { echo "no .dev/repo.bundle: run 'bash benchmarks/device_session.sh --prepare' here first"; exit 2; }

work=$(mktemp -d)
site=$work/site clone=$work/concretelab configs=$work/configs runs=$work/runs
mkdir -p "$configs" "$runs"
$python -m pip install -q --no-index --no-deps --target "$site" .dev/wheels/*.whl || exit 3
git -c advice.detachedHead=false clone -q .dev/repo.bundle "$clone" || exit 4
export PYTHONPATH="$clone/src:$site" PYTHONUNBUFFERED=1
echo "== $(date -u +%FT%TZ) commit $(git -C "$clone" rev-parse HEAD), $(left) s left"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
$python -c "import torch, concretelab; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

# 1. CUDA tests and the throughput table (gpu.sh runs the tests first); from the clone, so they test the bundle
echo "== $(date -u +%FT%TZ) gpu.sh, $(left) s left"
quick=--quick; [ "${QUICK:-1}" = 0 ] && quick=
(cd "$clone" && OUT="$clone/gpu-out" PYTHON=$python timeout -s TERM $(( $(left) / 3 )) bash benchmarks/gpu.sh $quick)
tar -czf "$out/gpu.tar.gz" -C "$clone" gpu-out 2>/dev/null

# 2. the m = 50 cells, side by side, until the deadline less a minute for the archives
echo "== $(date -u +%FT%TZ) m = 50 cells, $(left) s left"
for cell in "${CELLS[@]}"; do
    cp "$clone/configs/table1/$cell.toml" "$configs/"
    [ "${GRAPH:-1}" = 1 ] && echo 'cuda_graph = true  # the device session: the whole step as one CUDA graph' >> "$configs/$cell.toml"
done
valid=(); [ -n "${VALID_K:-}" ] && valid+=(--valid-k "$VALID_K"); [ -n "${VALID_IMAGES:-}" ] && valid+=(--valid-images "$VALID_IMAGES")
(cd "$clone" && timeout -s TERM -k 30 $(( $(left) - 60 )) $python -m concretelab reproduce table1 \
    --cells "${CELLS[@]}" --jobs 2 --steps "${STEPS:-300000}" --k "${K:-5000}" --large-k "${LARGE_K:-50000}" \
    --large-k-images "${LARGE_K_IMAGES:-10000}" --data "$repo/.dev/data" --configs "$configs" --out "$runs" "${valid[@]}" \
    --results "$clone/device-results" --markdown "$clone/device-results/RESULTS.md" \
    --figures "$clone/device-results/figures")
echo "== $(date -u +%FT%TZ) reproduce exited $?, $(left) s left"
tar -czf "$out/results.tar.gz" -C "$clone" device-results 2>/dev/null
for cell in "${CELLS[@]}"; do
    folders=$(cd "$runs" && ls -d "$cell"* 2>/dev/null)  # {cell}-{recipe}-{steps} and {cell}.log
    [ -n "$folders" ] && tar -czf "$out/runs-$cell.tar.gz" -C "$runs" $folders
done
ls -la "$out"

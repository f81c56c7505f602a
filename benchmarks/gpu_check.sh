#!/usr/bin/env bash
# The GPU check, one command for one H200 (≤ 9 minutes: 10 s set-up + 110 + 330 + 100), from the repository root:
#
#   bash benchmarks/gpu_check.sh OUT [--rehearse] [--bundle DIR] [--work DIR] [--stages abc]
#
# Stages, each under its own `timeout` (seconds; GPU_CHECK_TIMEOUT_A/_B/_C override), each
# appending to OUT as it goes, so that what a killed stage wrote survives:
#   setup  install what the machine lacks from DIR/wheels (made here by `make gpu-bundle`) unless
#          Snakemake, nbconvert and ipykernel import already; the data rule's four Fashion-MNIST
#          files from DIR/fashion-mnist (or Debian's mirror), verified, no URL tried      (≈ 20 s)
#   a 110  CUDA smoke tests (benchmarks/gpu_check.py smoke): compile + CUDA graphs for fold,
#          orthoff, limit, hard and soft with a smaller last batch, graph counts, kill and resume,
#          spectra on CUDA against the CPU in float64, bf16 against fp32 at depth 200
#   c 330  snakemake --configfile config/verify.yaml to the report, eager fp32
#          (ORTHOJAC_FAST_PATH), GPU_CHECK_GPUS (default 6) GPU jobs at a time, --rerun-incomplete
#          (a rerun on the same machine resumes: the data step leaves verified files untouched);
#          then results/reference/gpu-verify/ (tables, figures, report, ledger, manifest.json:
#          commit, GPU, driver, torch, date, stage times, wall time per rule)
#   b 100  benchmarks/train_throughput.py: depth 200, C = 32, naive against the training path
#          at batch 128 and 1024, compile seconds, bf16 against fp32 test accuracy (last: its
#          depth-200 compile took over 100 s on the H200, and the verify reference matters more)
# Stages run in the order a, c, b. What one H200 measured on 2026-12-04 is in
# benchmarks/gpu_runs/2026-12-04-h200/README.md.
# OUT holds at most 6 files: gpu_check.log (everything, stage by stage), smoke.json,
# throughput.json, verify.log (Snakemake's), manifest.json, gpu-verify.tar.gz.
#
# --rehearse: the same stages shrunk to run on a CPU in about two minutes (tests/test_gpu_check.py):
# device cpu, tiny networks, dynamo's eager backend, config/verify.yaml at rehearsal size
# (benchmarks/gpu_check.py rehearse-config), Snakemake in --work (default: a temporary folder).
# Exit status: 0 when every stage run succeeded, 1 otherwise (the later stages run all the same).
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: gpu_check.sh OUT [--rehearse] [--bundle DIR] [--work DIR] [--stages abc]}
shift
rehearse=0 bundle="$repo/.gpu-check" work="" stages=abc
while [ $# -gt 0 ]; do
    case "$1" in
        --rehearse) rehearse=1 ;;
        --bundle) bundle=$2; shift ;;
        --work) work=$2; shift ;;
        --stages) stages=$2; shift ;;
        *) echo "gpu_check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
log="$out/gpu_check.log"
exec > >(tee -a "$log") 2>&1
tmp=$(mktemp -d)
py=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
if [ "$rehearse" = 1 ]; then
    device=cpu cores=2 gpus=2
    ta=${GPU_CHECK_TIMEOUT_A:-300} tb=${GPU_CHECK_TIMEOUT_B:-300} tc=${GPU_CHECK_TIMEOUT_C:-900}
    work=${work:-$tmp/work}
else
    # Measured on one H200 (2026-12-04, torch 2.11): stage a 93 s; stage c's eager jobs take 8–40 s
    # each (train) and 9–41 s (spectra), mostly start-up and launches, and 47 jobs did not finish
    # in 300 s two at a time, so six GPU jobs share the device (16 CPU cores); stage b's compile of
    # the depth-200 fast path took over 100 s, so b runs last, on what is left.
    device=cuda cores=$(nproc) gpus=${GPU_CHECK_GPUS:-6}
    ta=${GPU_CHECK_TIMEOUT_A:-110} tb=${GPU_CHECK_TIMEOUT_B:-100} tc=${GPU_CHECK_TIMEOUT_C:-330}
    work=${work:-$repo}
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
failed=0
bundle_commit=$(cat "$bundle/commit" 2>/dev/null || echo unknown)
commit=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo "$bundle_commit")
# The checkout that travels to a GPU machine may carry an older .git than its files (2026-12-06: HEAD
# read 18bc749 while the files were 0852b5b's): the tracked files that differ from HEAD and the
# commit `make gpu-bundle` was made at are recorded beside HEAD, before any stage writes a file.
changed=$(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null | cut -c4- | paste -sd, -)

since() {  # seconds since the `date +%s.%N` value $1, by Python: the GPU machine has no `bc`
    "$py" -c 'import sys, time; print(round(time.time() - float(sys.argv[1]), 3))' "$1"
}

stage() {  # stage NAME TIMEOUT COMMAND…: run under `timeout`, record "NAME status seconds";
    # with STAGE_LOG set, the command's output goes there instead of gpu_check.log
    local name=$1 limit=$2 start rc status
    shift 2
    echo "=== stage $name: start $(date -u +%FT%TZ), timeout ${limit} s"
    start=$(date +%s.%N)
    if [ -n "${STAGE_LOG:-}" ]; then
        timeout -k 10 "$limit" "$@" >>"$STAGE_LOG" 2>&1
    else
        timeout -k 10 "$limit" "$@"
    fi
    rc=$?
    case $rc in 0) status=ok ;; 124 | 137) status=timeout ;; *) status="failed($rc)" ;; esac
    [ "$status" = ok ] || failed=1
    local seconds
    seconds=$(since "$start")
    echo "$name $status $seconds" >>"$tmp/stages"
    echo "=== stage $name: $status after ${seconds} s"
}

# config.yaml named too: the Snakefile's own `configfile:` is relative to the working folder
configs=("$repo/config/config.yaml" "$repo/config/verify.yaml")
if [ "$rehearse" = 1 ]; then
    "$py" "$repo/benchmarks/gpu_check.py" rehearse-config --out "$tmp/rehearse.yaml"
    configs+=("$tmp/rehearse.yaml")
fi

echo "=== gpu_check: commit $commit (tracked files changed from it: ${changed:-none}; bundle made at $bundle_commit), $(date -u +%FT%TZ), out $out, work $work, rehearse $rehearse"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
"$py" -c "import torch, platform; print('python', platform.python_version(), 'torch', torch.__version__, 'cuda', torch.cuda.is_available())"

setup() {
    if ! "$py" -c "import snakemake, nbconvert, ipykernel, jsonschema" 2>/dev/null; then
        [ -d "$bundle/wheels" ] || { echo "no Snakemake here and no $bundle/wheels (make gpu-bundle)"; return 1; }
        "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$tmp/site" \
            "$bundle"/wheels/*.whl || return 1
        # pip --target puts the wheels' data files (nbconvert's templates, ipykernel's kernelspec)
        # under share/jupyter, where Jupyter looks only when told (2026-12-06: no 'lab' template)
        export PYTHONPATH="$tmp/site:$PYTHONPATH" PATH="$tmp/site/bin:$PATH" \
            JUPYTER_PATH="$tmp/site/share/jupyter${JUPYTER_PATH:+:$JUPYTER_PATH}"
    fi
    snakemake --version || return 1
    # the rules run `python -m …`: a machine with python3 alone gets a `python` beside it
    if ! command -v python >/dev/null; then
        mkdir -p "$tmp/bin" && ln -s "$(command -v "$py")" "$tmp/bin/python" && export PATH="$tmp/bin:$PATH"
    fi
    # The data rule's files from the carried copy (or Debian's mirror) alone, verified against
    # config.yaml's digests: no URL is tried on a machine without internet. The data rule then
    # finds its outputs in place.
    "$py" "$repo/benchmarks/gpu_check.py" data --work "$work" \
        --mirror "$bundle/fashion-mnist" --mirror /usr/share/datasets/fashion-mnist
}
start=$(date +%s.%N)  # setup is a shell function (`timeout` runs commands): timed by hand
if setup; then status=ok; else status=failed; failed=1; fi
echo "setup $status $(since "$start")" >"$tmp/stages"
echo "=== setup: $status"
data="$work/results/data/fashion_mnist"

if [[ $stages == *a* ]]; then
    smoke=(--device "$device" --json "$out/smoke.json")
    [ "$rehearse" = 1 ] && smoke+=(--rehearse)
    stage a "$ta" "$py" "$repo/benchmarks/gpu_check.py" smoke "${smoke[@]}"
fi

if [[ $stages == *c* ]]; then
    verify=(snakemake --snakefile "$repo/Snakefile" --directory "$work" --cores "$cores"
            --resources gpu="$gpus" --scheduler greedy --keep-going --rerun-incomplete --configfile "${configs[@]}")
    echo "verify: ORTHOJAC_FAST_PATH='--no-compile --no-cuda-graphs --precision fp32' ${verify[*]}"
    export ORTHOJAC_FAST_PATH="--no-compile --no-cuda-graphs --precision fp32"
    STAGE_LOG="$out/verify.log" stage c "$tc" "${verify[@]}"
    unset ORTHOJAC_FAST_PATH
    tail -n 5 "$out/verify.log"
    reference="$work/results/reference/gpu-verify"
    "$py" "$repo/benchmarks/gpu_check.py" collect --work "$work" --log "$out/verify.log" \
        --stages "$tmp/stages" --out "$reference" --commit "$commit" --device "$device" \
        --changed "$changed" --bundle-commit "$bundle_commit" \
        --command "ORTHOJAC_FAST_PATH='--no-compile --no-cuda-graphs --precision fp32' ${verify[*]}" \
        || failed=1
    cp "$reference/manifest.json" "$out/manifest.json" 2>/dev/null
    tar -czf "$out/gpu-verify.tar.gz" -C "$work/results/reference" gpu-verify
fi

if [[ $stages == *b* ]]; then
    if [ "$rehearse" = 1 ]; then
        bench=(--depth 2 --channels 2 --batch-sizes 16 32 --steps 1 --warmup 1 --train-size 50
               --eval-size 50 --accuracy-epochs 1 --accuracy-train-size 100 --accuracy-test-size 50)
    else
        bench=(--depth 200 --channels 32 --batch-sizes 128 1024 --steps 30 --warmup 5
               --train-size 10000 --eval-size 1000 --accuracy-epochs 2 --accuracy-train-size 5000
               --accuracy-test-size 2000)
    fi
    stage b "$tb" "$py" "$repo/benchmarks/train_throughput.py" --device "$device" --families fold \
        "${bench[@]}" --accuracy-data-dir "$data" --json "$out/throughput.json"
fi

echo "=== gpu_check: done $(date -u +%FT%TZ), $( [ $failed = 0 ] && echo 'every stage ok' || echo 'a stage failed')"
cat "$tmp/stages"
rm -rf "$tmp"
exit $failed

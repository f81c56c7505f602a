#!/usr/bin/env bash
# What benchmarks/gpu_check.sh needs on a GPU machine without a package registry, gathered here
# into one git-ignored folder that travels beside the checkout (default .gpu-check/):
#   wheels/          the Python 3.12 x86-64 wheels of benchmarks/gpu_check_wheels.txt
#   fashion-mnist/   the four Fashion-MNIST .gz files (Debian's dataset-fashion-mnist)
#   commit           the commit the bundle was made at (the GPU machine may have no .git)
# and checks that the checkout and the bundle together stay within 64 MiB.
#
#   make gpu-bundle                 (= bash benchmarks/gpu_bundle.sh .gpu-check)
#   bash benchmarks/gpu_bundle.sh DIR [--check]
# --check: install the wheels into a fresh Python 3.12 virtual environment here (with the small
# packages the GPU machine already has) and run `snakemake --version`, `jupyter nbconvert
# --version`, a page rendered to HTML as the report's are, and a dry run of config/verify.yaml
# there: what the GPU machine will do, minus torch.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-.gpu-check}
check=${2:-}
py=${PYTHON:-python3}
mirror=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
limit=$((64 * 1024 * 1024))
mkdir -p "$out/wheels" "$out/fashion-mnist"
list=$(mktemp)
grep -v -e '^#' -e '^connection-pool==' "$here/benchmarks/gpu_check_wheels.txt" >"$list"
echo "== wheels for CPython 3.12, manylinux x86-64 → $out/wheels"
"$py" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$out/wheels" -r "$list"
# connection-pool (Snakemake's) is published as an sdist only: pure Python, built here
"$py" -m pip wheel --quiet --no-deps -w "$out/wheels" \
    "$(grep '^connection-pool==' "$here/benchmarks/gpu_check_wheels.txt")"
rm -f "$list" "$out"/wheels/*.tar.gz
want=$(grep -c -v '^#' "$here/benchmarks/gpu_check_wheels.txt")
have=$(ls "$out"/wheels/*.whl | wc -l)
[ "$have" -eq "$want" ] || { echo "gpu_bundle: $have wheels in $out/wheels, $want listed" >&2; exit 1; }
echo "== Fashion-MNIST from $mirror → $out/fashion-mnist"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    [ -f "$mirror/$f.gz" ] || { echo "gpu_bundle: $mirror/$f.gz missing (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
    cp "$mirror/$f.gz" "$out/fashion-mnist/"
done
git -C "$here" rev-parse HEAD >"$out/commit" 2>/dev/null || echo unknown >"$out/commit"
tree=$(cd "$here" && git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
bundle=$(du -sb "$out" | cut -f1)
total=$((tree + bundle))
printf '== size: checkout %.1f MiB + bundle %.1f MiB (wheels %.1f, data %.1f) = %.1f MiB of 64 MiB\n' \
    "$(echo "$tree / 1048576" | bc -l)" "$(echo "$bundle / 1048576" | bc -l)" \
    "$(echo "$(du -sb "$out/wheels" | cut -f1) / 1048576" | bc -l)" \
    "$(echo "$(du -sb "$out/fashion-mnist" | cut -f1) / 1048576" | bc -l)" "$(echo "$total / 1048576" | bc -l)"
[ "$total" -le "$limit" ] || { echo "gpu_bundle: $total bytes > 64 MiB: leave something out" >&2; exit 1; }

if [ "$check" = "--check" ]; then
    py312=${PYTHON312:-$(command -v python3.12 || true)}
    [ -n "$py312" ] || { echo "gpu_bundle --check: no python3.12 (set PYTHON312)" >&2; exit 1; }
    venv=$(mktemp -d)
    "$py312" -m venv "$venv"
    # the small packages the GPU machine has (its image lists them), from the registry here
    "$venv/bin/python" -m pip install --quiet pyyaml jinja2 markupsafe requests packaging psutil \
        pygments python-dateutil tabulate wrapt attrs numpy pandas typing-extensions six
    "$venv/bin/python" -m pip install --quiet --no-index --no-deps --no-compile --target "$venv/site" "$out"/wheels/*.whl
    export PYTHONPATH="$venv/site:$here/src" PATH="$venv/site/bin:$venv/bin:$PATH" \
        JUPYTER_PATH="$venv/site/share/jupyter"  # as gpu_check.sh's set-up: pip --target's data files
    snakemake --version
    jupyter nbconvert --version
    # a page rendered as the report's are (the lab template, from the wheels' data files)
    printf '%s' '{"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["check"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}' >"$venv/check.ipynb"
    jupyter nbconvert --to html --no-input --output-dir "$venv" "$venv/check.ipynb"
    python -c "import ipykernel, nbclient, jsonschema; print('ipykernel', ipykernel.__version__)"
    (cd "$here" && snakemake -n --quiet rules --scheduler greedy --configfile config/verify.yaml >/dev/null)
    echo "== --check: snakemake, nbconvert (a page rendered), ipykernel and a dry run of verify from the wheels: ok"
    rm -rf "$venv"
fi

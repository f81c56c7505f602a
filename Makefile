# The two commands of the README: `make quick` (set-up + the quick configuration end to end)
# and `make test` (the test suite). Everything else here is what those two need.
PY := .venv/bin/python
SNAKEMAKE := .venv/bin/snakemake
MIRROR := /usr/share/datasets/fashion-mnist
# The rules' `python -m orthojac…` commands must find the project's environment first.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: quick full verify test lint mirror gpu-bundle

quick: .venv/.installed mirror
	$(SNAKEMAKE) --cores all --configfile config/quick.yaml

full: .venv/.installed mirror
	$(SNAKEMAKE) --cores all --resources gpu=1

verify: .venv/.installed mirror
	$(SNAKEMAKE) --cores all --resources gpu=1 --configfile config/verify.yaml

test: .venv/.installed mirror
	$(PY) -m pytest

lint: .venv/.installed
	$(SNAKEMAKE) --lint
	.venv/bin/snakefmt --check Snakefile workflow/rules

# The pinned environment: exact versions from requirements.lock, then orthojac itself.
.venv/.installed: requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip==25.3
	$(PY) -m pip install --quiet -r requirements.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Debian's offline copy of Fashion-MNIST, one of the data rule's mirrors. Installed only where
# apt-get can (root); elsewhere the data rule tries the official URLs and the configured mirrors.
mirror:
	@if [ ! -d $(MIRROR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; fi

# What benchmarks/gpu_check.sh needs on a GPU machine without a package registry: Python 3.12
# wheels and the Fashion-MNIST .gz files in the git-ignored .gpu-check/ (≤ 64 MiB with the
# checkout; see benchmarks/README.md).
gpu-bundle: .venv/.installed mirror
	PYTHON=$(PY) bash benchmarks/gpu_bundle.sh .gpu-check

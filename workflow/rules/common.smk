# Helpers shared by every workflow module (config validation, the grid of runs, arguments).
import itertools
import json
import shlex

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")

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
    """The run's settings as orthojac-train flags."""
    return " ".join(
        f"--{key.replace('_', '-')} {shlex.quote(_format(value))}"
        for key, value in run_settings(wildcards).items()
    )


def fetch_args(wildcards):
    spec = config["data"][wildcards.dataset]
    args = [f"--url {shlex.quote(u)}" for u in spec.get("urls", [])]
    args += [f"--mirror {shlex.quote(m)}" for m in spec.get("mirrors", [])]
    args += [
        f"--expect {name}={f['size']}:{f['sha256']}"
        for name, f in spec["files"].items()
    ]
    return " ".join(args)


def spectra_checkpoints(experiment):
    return EXPERIMENTS[experiment]["spectra"]["checkpoints"]


def spectra_args(wildcards):
    spec = EXPERIMENTS[wildcards.experiment]["spectra"]
    layers = "" if spec["layers"] else " --no-layers"
    return f"--points {spec['points']} --chunk-size {spec['chunk_size']} --dtype {spec['dtype']}{layers}"


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


FIGURES = ["accuracy", "loss", "accuracy_vs_depth", "singular_values", "layer_defect"]
TABLES = ["runs", "metrics", "spectra", "layers"]


def all_outputs():
    return ["results/report/index.html"]

"""Issue #25: nothing from a config file reaches a shell or a folder outside the project, and every
bad value is refused at load, naming its key, before a job runs.

Pure library tests (orthojac.workflow's checks and command formatting), and a few Snakemake dry
runs where the Snakefile's own loading is what is tested."""

from __future__ import annotations

import copy
import shlex
import subprocess
import sys

import pytest

from conftest import REPO
from orthojac.workflow import Pipeline, config_errors, fill_defaults, load_config

SCHEMA_FILE = REPO / "workflow/schemas/config.schema.yaml"
ZEROS = "0" * 64


def quick() -> dict:
    return load_config([REPO / "config/quick.yaml"], base=REPO / "config/config.yaml")


def validated(cfg: dict) -> dict:
    """`cfg` with the schema's defaults filled in, as the Snakefile sees it."""
    return fill_defaults(copy.deepcopy(cfg))


def errors(cfg: dict) -> str:
    return "\n".join(config_errors(cfg, SCHEMA_FILE))


def snakemake_dry_run(tmp_path, yaml_text: str, env) -> subprocess.CompletedProcess:
    extra = tmp_path / "extra.yaml"
    extra.write_text(yaml_text)
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1", "--configfile",
                           "config/quick.yaml", str(extra)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


# -- 1. shell injection and path escape ---------------------------------------------------------
INJECTION = "x$(touch PWNED)"


def test_an_injection_in_a_files_key_is_refused_at_load_naming_the_key():
    cfg = quick()
    cfg["data"]["fashion_mnist"]["files"][INJECTION] = {"size": 1, "sha256": ZEROS}
    out = errors(cfg)
    assert "data.fashion_mnist.files" in out and INJECTION in out


def test_the_fetch_command_passes_a_files_key_as_one_literal_argument(tmp_path):
    """Even past the load checks, the formatted command runs nothing: the shell sees the key as text."""
    cfg = validated(quick())
    files = cfg["data"]["fashion_mnist"]["files"]
    files[INJECTION] = {"size": 1, "sha256": ZEROS}
    cfg["data"]["fashion_mnist"]["mirrors"].append("/tmp/a b/$(touch PWNED)")
    args = Pipeline(cfg).fetch_args("fashion_mnist")
    out = subprocess.run(["bash", "-c", f"printf '%s\\n' {args}"], cwd=tmp_path, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert not (tmp_path / "PWNED").exists()
    assert f"{INJECTION}=1:{ZEROS}" in out and "/tmp/a b/$(touch PWNED)" in out
    assert out == shlex.split(args)


def test_snakemake_refuses_the_injection_before_any_job_and_no_marker_appears(tmp_path, venv_env):
    proc = snakemake_dry_run(tmp_path, f"""data:
  fashion_mnist:
    files:
      '{INJECTION}': {{size: 1, sha256: "{ZEROS}"}}
""", venv_env)
    assert proc.returncode != 0
    assert "data.fashion_mnist.files" in proc.stderr + proc.stdout and INJECTION in proc.stderr + proc.stdout
    assert not (REPO / "PWNED").exists() and not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("value", ["-1, 0, 1", "1\n,2", "0 1", "-1,0,1", "a/b", "0+1", "x$(touch PWNED)"])
def test_a_grid_value_unfit_for_a_run_name_is_refused_naming_its_key(value):
    cfg = quick()
    cfg["experiments"][0]["settings"]["breakpoints"] = {"grid": ["0", value], "choice": "test"}
    out = errors(cfg)
    assert "experiments[0](init_orthogonality).settings.breakpoints.grid[1]" in out, out


def test_a_comma_separated_breakpoints_value_is_allowed_and_passed_as_one_argument():
    cfg = quick()
    cfg["experiments"][0]["settings"]["breakpoints"] = {"value": "-1, 0, 1", "choice": "test"}
    assert errors(cfg) == ""
    pipeline = Pipeline(validated(cfg))
    experiment, run = next(iter(pipeline.runs))
    assert "--breakpoints=-1, 0, 1" in shlex.split(pipeline.train_args(experiment, run))


@pytest.mark.parametrize("where, key", [
    ("experiments[0].name", "a\n"), ("experiments[0].name", "a b"), ("experiments[0].name", "../a"),
    ("data", "fash\n"), ("downloads", "g/l"),
])
def test_a_name_that_becomes_a_folder_is_matched_whole(where, key):
    """`$` in a pattern matches before a trailing newline; the schema's patterns end in \\Z."""
    cfg = quick()
    if where == "experiments[0].name":
        cfg["experiments"][0]["name"] = key
        assert "experiments[0]" in errors(cfg) and repr(key)[1:-1] in errors(cfg)
    else:
        cfg[where][key] = copy.deepcopy(next(iter(cfg[where].values())))
        assert f"config: {where}:" in errors(cfg) and repr(key)[1:-1] in errors(cfg)


def test_every_error_is_one_line_whatever_the_names():
    cfg = quick()
    cfg["experiments"][0]["name"] = "a\nb"
    cfg["experiments"][0]["settings"]["depth"] = {"value": 0, "choice": "x"}
    cfg["hlav_rnn"]["x\ny"] = 1
    out = config_errors(cfg, SCHEMA_FILE)
    assert "config: experiments[0]('a\\nb').settings.depth.value: 0 is less than the minimum of 1" in out
    assert all("\n" not in line for line in out) and len(out) >= 3


@pytest.mark.parametrize("digest_key", ["sha256", "md5"])
def test_a_digest_with_a_trailing_newline_is_refused(digest_key):
    cfg = quick()
    spec = cfg["downloads"]["glove_6b"]
    spec[digest_key] = ("0" * (64 if digest_key == "sha256" else 32)) + "\n"
    assert f"downloads.glove_6b.{digest_key}" in errors(cfg)


def test_a_files_key_escaping_the_data_folder_is_refused_naming_the_key():
    cfg = quick()
    cfg["data"]["fashion_mnist"]["files"]["../../../outside/x"] = {"size": 1, "sha256": ZEROS}
    out = errors(cfg)
    assert "data.fashion_mnist.files" in out and "../../../outside/x" in out


@pytest.mark.parametrize("file", ["../x/glove.6B.zip", "/etc/passwd", "..", "a/b.zip", "x.zip\n"])
def test_a_download_file_with_a_folder_is_refused_naming_the_key(file):
    cfg = quick()
    cfg["downloads"]["glove_6b"]["file"] = file
    assert "downloads.glove_6b.file" in errors(cfg)


def test_every_command_of_quick_parses_back_to_the_configured_values():
    """The library's flags, split as a shell would, give back each configured value."""
    pipeline = Pipeline(validated(quick()))
    for (experiment, run), settings in pipeline.runs.items():
        tokens = shlex.split(pipeline.train_args(experiment, run))
        assert len(tokens) == len(settings)
    assert shlex.split(pipeline.download_args("glove_6b"))[:4] == ["--file", "glove.6B.zip", "--key", "glove_6b"]


# -- 2. refused at load, every error at once ----------------------------------------------------
def test_a_key_repeated_in_a_config_file_is_refused_naming_file_and_key(tmp_path):
    from orthojac.workflow import ConfigFileError, read_config_file

    path = tmp_path / "dup.yaml"
    path.write_text("hlav_rnn:\n  lr: {value: 0.1, choice: a}\n  lr: {value: 0.2, choice: b}\n")
    with pytest.raises(ConfigFileError, match=r"dup\.yaml: key 'lr' appears twice.*lines 2 and 3"):
        read_config_file(path)
    with pytest.raises(ConfigFileError, match="dup.yaml"):
        load_config([path], base=REPO / "config/config.yaml")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "[1, 2]\n"])
def test_an_empty_or_non_mapping_config_file_is_refused_naming_the_file(tmp_path, text):
    from orthojac.workflow import ConfigFileError

    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFileError, match="empty.yaml"):
        load_config([path], base=REPO / "config/config.yaml")


def test_snakemake_refuses_a_repeated_key_in_a_configfile(tmp_path, venv_env):
    proc = snakemake_dry_run(tmp_path, "hlav_deep: null\nhlav_deep: null\n", venv_env)
    assert proc.returncode != 0
    assert "extra.yaml: key 'hlav_deep' appears twice" in proc.stdout + proc.stderr


def test_every_semantic_fault_is_named_at_once():
    cfg = quick()
    cfg["experiments"][1]["name"] = cfg["experiments"][0]["name"]
    cfg["experiments"][2]["settings"]["lr"] = {"value": float("nan"), "choice": "x"}
    cfg["experiments"][0]["settings"]["width"] = {"value": 10**9, "choice": "x"}
    cfg["hlav_rnn"]["gain"] = {"value": float("inf"), "choice": "x"}
    cfg["hlav_rnn"]["seeds"] = {"grid": [0, 1, 0], "choice": "x"}
    cfg["hlav_linear"]["dataset"] = {"value": "cifar10", "choice": "x"}
    cfg["experiments"][2]["settings"]["depth"] = {"grid": [2, 2], "choice": "x"}
    out = config_errors(cfg, SCHEMA_FILE)
    expected = [
        "experiments[1](init_orthogonality).name: 'init_orthogonality' is also the name of experiments[0]",
        "experiments[2](depth_sweep).settings.lr.value: nan is not a finite number",
        "experiments[0](init_orthogonality).settings.width.value: 1000000000 is greater than the maximum of 16384",
        "hlav_rnn.gain.value: inf is not a finite number",
        "hlav_rnn.seeds.grid: 0 is repeated",
        "hlav_linear.dataset: 'cifar10' is not a key of data:",
        "experiments[2](depth_sweep).settings.depth.grid: 2 is repeated",
    ]
    for line in expected:
        assert any(line in e for e in out), (line, out)


def test_every_size_bound_of_a_field_is_enforced_wherever_the_setting_appears():
    import dataclasses

    from orthojac.config import RunConfig
    from orthojac.spectra_settings import SpectraSettings
    from orthojac.workflow.schema import config_schema
    from orthojac.workflow.sections import SECTIONS

    places = [(("experiments", 0, "settings"), RunConfig, True), (("experiments", 0, "spectra"), SpectraSettings, False)]
    places += [((name,), section.settings, True) for name, section in SECTIONS.items()]
    checked, base, schema = set(), quick(), config_schema()
    for path, settings, with_provenance in places:
        for f in dataclasses.fields(settings):
            bound = f.metadata.get("maximum")
            if bound is None:
                continue
            for value, refused in ((bound, False), (bound + 1, True)):
                cfg = copy.deepcopy(base)
                block = cfg
                for key in path:
                    block = block[key] if not isinstance(key, str) else block.setdefault(key, {})
                many = "list" in str(f.type)
                item = [value] if many else value
                block[f.name] = {"grid": item, "choice": "x"} if many and with_provenance else (
                    {"value": item, "choice": "x"} if with_provenance else item)
                out = [e for e in config_errors(cfg, schema) if f"maximum of {bound}" in e]
                assert bool(out) == refused, (path, f.name, value, out)
            checked.add(f.name)
    assert {"width", "depth", "depths", "hidden", "seq_len", "chunk_size", "exact_max_dim", "points"} <= checked


def test_a_section_whose_dataset_is_unknown_or_a_download_missing_is_named():
    cfg = quick()
    cfg["hlav_deep"]["dataset"] = {"value": "nope", "choice": "x"}
    cfg["hlav_lstm"]["data"] = {"value": "required", "choice": "x"}
    cfg["hlav_lstm"]["text"] = {"value": "absent", "choice": "x"}
    out = errors(cfg)
    assert "hlav_deep.dataset: 'nope' is not a key of data" in out
    assert "hlav_lstm.text: 'absent' is not a key of downloads" in out


def test_a_data_set_missing_an_idx_file_is_named():
    cfg = quick()
    del cfg["data"]["fashion_mnist"]["files"]["t10k-labels-idx1-ubyte"]
    assert "data.fashion_mnist.files: want exactly the IDX files" in errors(cfg)


@pytest.mark.parametrize("value", ["--flag", "-x"])
def test_a_section_text_value_that_would_be_read_as_a_flag_is_refused(value):
    cfg = quick()
    cfg["hlav_lstm"]["embeddings_member"] = {"value": value, "choice": "x"}
    assert f"hlav_lstm.embeddings_member: {value!r} starts with '-'" in errors(cfg)


def test_an_integer_setting_written_as_a_float_is_refused():
    """JSON Schema counts 2.0 as an integer; the program's int flag would fail on "2.0" when the job runs."""
    cfg = quick()
    cfg["hlav_rnn"]["test_size"] = {"value": 2.0, "choice": "x"}
    assert "hlav_rnn.test_size.value: 2.0 is not of type 'integer'" in errors(cfg)


@pytest.mark.parametrize("key, setting", [
    ("lr_scaling", {"grid": ["~"], "choice": "x"}), ("optimizer", {"grid": ["fnord"], "choice": "x"}),
    ("target", {"grid": [2.0], "choice": "x"}), ("dataset", {"grid": ["fashion_mnist"], "choice": "x"}),
])
def test_a_grid_is_checked_like_a_value_and_single_valued_settings_take_no_grid(key, setting):
    cfg = quick()
    cfg["hlav_linear"][key] = setting
    assert f"hlav_linear.{key}" in errors(cfg)


def test_the_shipped_configs_pass_every_check():
    for name in ("config.yaml", "quick.yaml", "cpu.yaml", "verify.yaml"):
        layers = [] if name == "config.yaml" else [REPO / "config" / name]
        assert config_errors(load_config(layers, base=REPO / "config/config.yaml"), SCHEMA_FILE) == [], name


# -- 3. config text in the report ---------------------------------------------------------------
def test_an_experiments_description_is_shown_as_text_not_html():
    from orthojac.report import experiment_summary

    line = experiment_summary({"name": "x", "description": '<script>alert(1)</script> <img src=x onerror="y">'
                               " [link](javascript:z) **bold**", "claims": ["P1"]})
    assert "<script" not in line and "<img" not in line
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in line and "onerror=&quot;y&quot;" in line
    assert "[link](javascript:z) **bold**" in line  # literal: not rendered as Markdown
    assert line.startswith("<p><b>x</b>: ") and line.endswith(" Claims: P1.</p>")


def test_no_report_notebook_renders_config_text_as_markdown():
    """The pages show experiment descriptions through experiment_summary (escaped HTML); a
    description interpolated into Markdown(...) would render HTML from a config file."""
    import json

    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        for cell in cells:
            source = "".join(cell["source"])
            for line in source.splitlines():
                assert not ("Markdown(" in line and "description" in line), (notebook.name, line)


# -- 4. compare handles any two result folders --------------------------------------------------
def test_compare_pairs_rows_whose_key_columns_were_read_with_other_types_and_names_what_is_missing(
        tmp_path, capsys):
    """The CPU reference's H2 table holds text placeholders ("nan") where a quick run's has numbers
    (gain 1.1): reading gives float64 in one, text in the other; compare pairs them, and names the
    tables and columns only one folder has (it crashed in pandas' merge)."""
    import shutil

    import pandas as pd

    from orthojac.reference import compare

    ref = tmp_path / "ref"
    shutil.copytree(REPO / "results/reference/cpu/tables", ref / "tables")
    shutil.copytree(REPO / "results/reference/cpu/report", ref / "report")
    new = tmp_path / "new"
    (new / "tables").mkdir(parents=True)
    (new / "report").mkdir()
    shutil.copy(ref / "report/ledger.csv", new / "report/ledger.csv")
    h2 = pd.read_csv(ref / "tables/hlav_lstm.csv", keep_default_na=False)
    assert (h2["gain"] == "nan").any()  # the reference's placeholder rows
    numeric = h2.assign(gain=1.1, lam=0.01, extra=1)
    numeric.to_csv(new / "tables/hlav_lstm.csv", index=False)
    shutil.copy(ref / "tables/hlav_rnn.csv", new / "tables/hlav_rnn.csv")
    rnn = pd.read_csv(new / "tables/hlav_rnn.csv")
    rnn.assign(gain=rnn["gain"].astype(str)).to_csv(new / "tables/hlav_rnn.csv", index=False)
    tables = compare.compare_tables(new, ref, 1e-6).set_index("table")
    assert tables.loc["hlav_rnn", "class"] == "identical"  # "1.0" (text) pairs with 1.0
    assert tables.loc["hlav_lstm", "class"] == "differs"
    assert "columns only in the new results: ['extra']" in tables.loc["hlav_lstm", "note"]
    assert tables.loc["h4", "class"] == "missing" and "only in the reference" in tables.loc["h4", "note"]
    assert compare.main([str(new), str(ref)]) == 0  # verdicts equal; numbers differ without --strict
    out = capsys.readouterr().out
    assert "only in the reference" in out


# -- 5. resume compares what changes a run's outputs --------------------------------------------
def test_a_run_killed_then_asked_for_an_epoch_it_did_not_keep_starts_afresh(tmp_path, idx_folder, capsys):
    """Killed after epoch 2 of 3 with no --save-epochs, rerun with --save-epochs 1 3: the checkpoint
    has no weights of epoch 1, so resuming would leave epochs.pt without them (the spectra stage
    then wrote NaN rows 'the run ended before it' for a completed run)."""
    import torch

    from orthojac.run import train
    from orthojac.run.checkpoint import load_checkpoint
    from orthojac.config import RunConfig

    torch.set_num_threads(1)
    cfg = RunConfig(arch="conv", family="fold", channels=1, depth=2, bias_init=-0.5, lr=0.01, epochs=3,
                    val_size=100, batch_size=50)
    whole = tmp_path / "whole"
    train.train(cfg, idx_folder, whole, torch.device("cpu"), checkpoint_every=0, save_epochs=(1, 3))

    class Killed(Exception):
        pass

    real_evaluate, calls = train.evaluate, {"n": 0}

    def evaluate_then_kill(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # epoch 0: 3 calls, epoch 1: 3 calls; the 7th is after epoch 2
            raise Killed
        return real_evaluate(*args, **kwargs)

    out = tmp_path / "killed"
    train.evaluate = evaluate_then_kill
    try:
        with pytest.raises(Killed):
            train.train(cfg, idx_folder, out, torch.device("cpu"), checkpoint_every=1, save_epochs=())
    finally:
        train.evaluate = real_evaluate
    assert load_checkpoint(out / "checkpoint.pt")["state"]["epoch"] >= 1
    capsys.readouterr()
    train.train(cfg, idx_folder, out, torch.device("cpu"), checkpoint_every=1, save_epochs=(1, 3))
    assert "not resumed: it kept the weights of epochs none, and this run wants [1]" in capsys.readouterr().err
    got, want = load_checkpoint(out / "epochs.pt")["models"], load_checkpoint(whole / "epochs.pt")["models"]
    assert sorted(got) == ["1", "3"]
    assert all(torch.equal(got["1"][k], want["1"][k]) for k in want["1"])


# -- 6. bounded decompression and copies; IDX labels ---------------------------------------------
def test_a_gzip_bomb_in_a_mirror_is_refused_without_inflating_it(tmp_path):
    """A 50 MB payload of zeros gzips to ~50 KB; expected is an 11-byte file. Decompression stops
    just past 11 bytes (it used to inflate all of it before comparing sizes)."""
    import gzip
    import tracemalloc

    from orthojac.data import Expected, fetch
    from orthojac.files import DataError

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(bytes(50_000_000), compresslevel=9))
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"got more than 11 B \(decompression stopped\)"):
            fetch([Expected("t10k-labels-idx1-ubyte", 11, ZEROS)], tmp_path / "out", urls=[], mirrors=[mirror])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000, peak


def test_a_multi_member_gzip_is_still_read_whole(tmp_path):
    import gzip
    import hashlib

    from orthojac.data import Expected, fetch

    payload = b"0123456789" * 1000
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "x.gz").write_bytes(gzip.compress(payload[:4000]) + gzip.compress(payload[4000:]))
    fetch([Expected("x", len(payload), hashlib.sha256(payload).hexdigest())], tmp_path / "out", urls=[],
          mirrors=[mirror])
    assert (tmp_path / "out/x").read_bytes() == payload


def test_a_download_larger_than_its_pinned_size_is_not_copied_whole(tmp_path):
    from orthojac.data import downloads
    from orthojac.files import DataError

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "big.zip").write_bytes(bytes(8 * downloads.CHUNK))
    copied = []
    real = downloads._stream_copy

    def spy(reader, out_dir, file, limit=None):
        result = real(reader, out_dir, file, limit)
        copied.append(result[1])
        return result

    downloads._stream_copy = spy
    try:
        with pytest.raises(DataError, match=r"expected 10 B, got more \(the copy stopped after"):
            downloads.fetch("big.zip", "big", 10, ZEROS, [], [mirror], tmp_path / "out", False, timeout=1)
    finally:
        downloads._stream_copy = real
    assert copied == [downloads.CHUNK]


def test_a_download_file_with_a_folder_is_refused_by_the_program(tmp_path):
    from orthojac.data import downloads

    with pytest.raises(ValueError, match="want a file name, not a path"):
        downloads.fetch("../x.zip", "x", 10, ZEROS, [], [tmp_path], tmp_path / "out", False, timeout=1)


def test_an_idx_label_outside_the_classes_is_refused_naming_the_file(idx_folder):
    import numpy as np

    from conftest import write_idx
    from orthojac.data import load_split
    from orthojac.files import DataError

    labels = np.zeros(200, dtype=np.uint8)
    labels[7] = 200
    path = idx_folder / "t10k-labels-idx1-ubyte"
    write_idx(path, labels, compress=False)
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: 1 labels outside 0 … 9 \(first: label 200 at index 7\)"):
        load_split(idx_folder, "t10k")


# -- 7. numerical faults are recorded, not raised -------------------------------------------------
def test_a_non_finite_jacobian_or_a_failed_svd_is_a_noted_row_and_the_other_points_go_on(monkeypatch):
    import math

    import torch

    from orthojac import spectra
    from orthojac.config import RunConfig
    from orthojac.nets.models import build_model

    model = build_model(RunConfig(arch="dense", family="fold", width=8, depth=2)).double()
    images = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    real_jacobian, calls = spectra.jacobian_matrix, {"n": 0}

    def faulty_jacobian(f, x, chunk_size=256, copies=False):
        calls["n"] += 1
        jac = real_jacobian(f, x, chunk_size, copies)
        return jac * float("nan") if calls["n"] == 1 else jac  # the body's Jacobian at point 0

    real_svdvals = torch.linalg.svdvals

    def failing_svdvals(a, *args, **kwargs):
        if calls["n"] == 4:  # the body at point 1 (after point 0's body and two layers)
            raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")
        return real_svdvals(a, *args, **kwargs)

    monkeypatch.setattr(spectra, "jacobian_matrix", faulty_jacobian)
    monkeypatch.setattr(torch.linalg, "svdvals", failing_svdvals)
    body, layers = spectra.spectra(model, images, 8, True)
    by_point = {p: [r for r in body if r["point"] == p] for p in range(3)}
    assert by_point[0] == [{"point": 0, "index": 0, "sigma": by_point[0][0]["sigma"],
                            "note": "the Jacobian has non-finite entries"}]
    assert math.isnan(by_point[0][0]["sigma"])
    assert len(by_point[1]) == 1 and by_point[1][0]["note"].startswith("the SVD failed (linalg.svd")
    assert len(by_point[2]) == 8 and all(math.isfinite(r["sigma"]) and "note" not in r for r in by_point[2])
    assert {r["point"] for r in layers} == {0, 1, 2}


def test_the_cli_writes_a_note_column_for_a_failed_point_and_exits_normally(tmp_path, idx_folder, monkeypatch):
    import pandas as pd
    import torch

    from orthojac import spectra
    from orthojac.run.checkpoint import atomic_save
    from orthojac.config import RunConfig
    from orthojac.nets.models import build_model

    cfg = RunConfig(arch="dense", family="fold", width=8, depth=2)
    weights = tmp_path / "init.pt"
    atomic_save({"model": build_model(cfg).state_dict(), "config": cfg.to_dict(),
                 "normalisation": {"mean": 0.2, "std": 0.3}}, weights)

    def failing(*args, **kwargs):
        raise torch.linalg.LinAlgError("linalg.svd: The algorithm failed to converge")

    monkeypatch.setattr(torch.linalg, "svdvals", failing)
    body, layers = tmp_path / "b.csv", tmp_path / "l.csv"
    spectra.main(["--weights", str(weights), "--data-dir", str(idx_folder), "--points", "2", "--method", "exact",
                  "--grad-batch", "4", "--out-body", str(body), "--out-layers", str(layers)])
    b, l = pd.read_csv(body), pd.read_csv(layers)
    assert list(b.columns) == ["point", "index", "sigma", "dtype", "note"] and len(b) == 2
    assert b["sigma"].isna().all() and b["note"].str.startswith("the SVD failed").all()
    measured = l["metric"].isin(["grad_norm", "bb_defect"])  # a gradient and the weights: no SVD in them
    spectral = l[~measured]
    assert spectral["value"].isna().all() and spectral["note"].str.startswith("the SVD failed").all()
    assert (l.loc[l["metric"] == "grad_norm", "value"] > 0).all()
    assert (l.loc[l["metric"] == "bb_defect", "value"] < 1e-5).all() and (l["metric"] == "bb_defect").sum() == 2


def test_lanczos_records_whether_it_converged():
    import torch

    from orthojac.spectra.free import extreme_singular_values

    torch.manual_seed(0)
    a = torch.randn(60, 60, dtype=torch.float64)
    f = lambda v: v @ a.T  # noqa: E731
    x = torch.randn(60, dtype=torch.float64)
    done = extreme_singular_values(f, x, generator=torch.Generator().manual_seed(0))
    cut = extreme_singular_values(f, x, max_steps=3, generator=torch.Generator().manual_seed(0))
    exact = torch.linalg.svdvals(a)
    assert done.converged and abs(done.sigma_max - exact[0].item()) < 1e-8
    assert not cut.converged and cut.steps == 3 and cut.residual > 1e-10


def test_a_buffer_that_is_not_finite_makes_the_network_not_finite():
    import torch

    from orthojac import spectra
    from orthojac.config import RunConfig
    from orthojac.nets.models import build_model

    model = build_model(RunConfig(arch="dense", family="resnet", width=8, depth=2, norm="batch"))
    assert spectra.finite(model)
    next(b for b in model.buffers() if b.is_floating_point()).fill_(float("inf"))
    assert not spectra.finite(model)


def test_a_recurrent_kernel_that_is_not_finite_gives_nan_spectrum_rows():
    import math

    import torch

    from orthojac.thesis.common import spectrum_rows

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.recurrent = torch.nn.Parameter(torch.eye(4))

    net = Net()
    assert spectrum_rows(net)["sv_max"] == 1.0
    with torch.no_grad():
        net.recurrent[0, 0] = float("nan")
    assert all(math.isnan(v) for v in spectrum_rows(net).values())


# -- 9. the docs say what a config may contain ----------------------------------------------------
def test_the_docs_state_the_trust():
    text = (REPO / "docs/config.md").read_text()
    assert "yte" in text and "__use_yte__" in text and "trusted like code" in text
    assert "docs/config.md" in (REPO / "config/README.md").read_text()

"""What decides a CPU run's rounding: pinned by `make reference`, recorded in the manifest
(orthojac.reference), and reported by orthojac.reference.compare, which then compares statistically (seed
means within their spread) as well as bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import REPO
from orthojac.reference import compare
from orthojac import reference


def test_the_manifest_records_the_pins_the_capability_the_blas_and_the_cpu(tmp_path, monkeypatch):
    for name, value in reference.ROUNDING_PINS.items():
        monkeypatch.setenv(name, value)
    info = reference.manifest(tmp_path, "make reference", 1.0, None)["rounding"]
    assert info["pins"] == reference.ROUNDING_PINS and info["pinned"] is True
    assert info["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert info["blas"] == reference.blas_info(torch.__config__.show())["blas"] != "unknown"
    assert info["vendor"] and isinstance(info["flags"], list) and info["threads"] >= 1
    monkeypatch.delenv("MKL_CBWR")
    info = reference.manifest(tmp_path, "make reference", 1.0, None)["rounding"]
    assert info["pinned"] is False and info["pins"]["MKL_CBWR"] is None


def test_blas_info_reads_torchs_build_text():
    text = ("  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605\n"
            "  - Intel(R) MKL-DNN v3.12.0 (Git Hash 80afa7)\n  - Build settings: BLAS_INFO=mkl, LAPACK_INFO=mkl, ")
    assert reference.blas_info(text) == {"blas": "mkl", "lapack": "mkl", "mkl": "2024.2", "onednn": "v3.12.0"}
    assert reference.blas_info("BLAS_INFO=open, LAPACK_INFO=open")["blas"] == "open"
    assert reference.blas_info("")["blas"] == "unknown"


def test_the_pins_are_printed_for_env_and_torch_obeys_the_capability_pin(capsys):
    reference.main(["pins"])
    printed = capsys.readouterr().out.split()
    assert dict(p.split("=", 1) for p in printed) == reference.ROUNDING_PINS
    env = os.environ | reference.ROUNDING_PINS | {"PYTHONPATH": str(REPO / "src")}
    out = subprocess.run([sys.executable, "-c", "from orthojac.reference import rounding; import json; "
                          "print(json.dumps(rounding()))"], env=env, capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    has_avx2 = "avx2" in reference.cpu_info()["flags"]  # a CPU without AVX2 gets its best below it
    assert (info["cpu_capability"] == "AVX2") == has_avx2 and info["cpu_capability"] != "AVX512"
    assert info["pinned"] is True and info["threads"] == 1


def test_make_reference_runs_every_job_and_the_snapshot_under_the_pins():
    recipe = (REPO / "Makefile").read_text().split("\nreference:")[1].split("\n\n")[0]
    assert "pins=$$($(PY) -m orthojac reference pins)" in recipe
    assert "env $$pins $(SNAKEMAKE)" in recipe and "env $$pins $(PY) -m orthojac reference snapshot" in recipe


def _folder(root: Path, values: dict[str, list[float]], rounding: dict | None, manifest: bool = True) -> Path:
    """A results-shaped folder: per group (run name without the seed) one run a seed, final test
    accuracy `values[group][seed]`, and a manifest whose `rounding` is given."""
    runs, metrics = [], []
    for group, accs in values.items():
        for seed, acc in enumerate(accs):
            run = f"{group}+seed={seed}"
            runs.append({"experiment": "e", "run": run, "status": "completed", "steps": 10})
            for split in ("test", "val"):
                metrics.append({"experiment": "e", "run": run, "epoch": 1, "step": 10, "split": split,
                                "metric": "accuracy", "value": acc})
    (root / "tables").mkdir(parents=True)
    pd.DataFrame(runs).to_csv(root / "tables/runs.csv", index=False)
    pd.DataFrame(metrics).to_csv(root / "tables/metrics.csv", index=False)
    if manifest:
        body = {"cpu": "some CPU", "torch": torch.__version__} | ({"rounding": rounding} if rounding else {})
        (root / "manifest.json").write_text(json.dumps(body))
    return root


PINNED = {"pins": reference.ROUNDING_PINS, "pinned": True, "cpu_capability": "AVX2", "threads": 1, "blas": "mkl",
          "lapack": "mkl", "mkl": "2024.2", "onednn": "v3.12.0", "vendor": "AuthenticAMD", "flags": ["avx2"]}


def test_compare_reports_a_differing_capability_first(tmp_path, capsys):
    values = {"family=fold": [0.86, 0.87, 0.85]}
    new = _folder(tmp_path / "new", values, PINNED | {"cpu_capability": "AVX512", "pinned": False})
    ref = _folder(tmp_path / "ref", values, PINNED)
    lines = compare.rounding_differences(new, ref)
    assert "cpu_capability: 'AVX512' here, 'AVX2' in the reference" in lines
    assert "pinned: False here, True in the reference" in lines
    assert compare.rounding_differences(ref, ref) == []
    compare.main([str(new), str(ref)])
    out = capsys.readouterr().out
    assert out.index("## Rounding settings") < out.index("## Training runs")
    assert "- cpu_capability: 'AVX512' here, 'AVX2' in the reference" in out


def test_a_manifest_without_rounding_or_no_manifest_is_named(tmp_path):
    values = {"g": [0.5, 0.5]}
    old = _folder(tmp_path / "old", values, None)
    new = _folder(tmp_path / "new", values, PINNED)
    bare = _folder(tmp_path / "bare", values, None, manifest=False)
    assert any("reference: the manifest records no rounding" in line for line in compare.rounding_differences(new, old))
    assert compare.rounding_differences(bare, new) == [f"new ({bare}): no manifest.json, its rounding settings are unknown"]


def test_groups_are_compared_by_their_seed_means_within_their_spread(tmp_path):
    ref = _folder(tmp_path / "ref", {"a": [0.86, 0.87, 0.85], "b": [0.50, 0.52, 0.48], "c": [0.9]}, PINNED)
    new = _folder(tmp_path / "new", {"a": [0.86, 0.87, 0.85], "b": [0.51, 0.53, 0.47], "c": [0.8],
                                     "d": [0.1, 0.1]}, PINNED)
    groups = compare.compare_groups(new, ref).query("split == 'test'").set_index("group")
    assert groups.loc["a", "class"] == "identical"
    assert groups.loc["b", "class"] == "within spread"  # Δ = 0.0033, se ≈ 0.0183
    assert groups.loc["c", "class"] == "one seed" and groups.loc["d", "class"] == "missing"
    far = _folder(tmp_path / "far", {"a": [0.76, 0.77, 0.75]}, PINNED)
    row = compare.compare_groups(far, ref).query("split == 'test' and group == 'a'").iloc[0]
    assert row["class"] == "differs" and row["diff"] == pytest.approx(-0.10)


def test_a_trained_run_off_by_less_than_its_seeds_spread_is_said_so_but_strict_still_fails(tmp_path):
    ref = _folder(tmp_path / "ref", {"a": [0.86, 0.87, 0.85]}, PINNED)
    new = _folder(tmp_path / "new", {"a": [0.865, 0.87, 0.85]}, PINNED | {"cpu_capability": "AVX512"})
    runs = compare.with_seed_spread(compare.compare_runs(new, ref, 1e-6), new, ref).set_index("run")
    assert runs.loc["a+seed=0", "class"] == compare.SPREAD and "≤ 2 × seed sd 0.01" in runs.loc["a+seed=0", "note"]
    assert runs.loc["a+seed=1", "class"] == "identical"
    far = _folder(tmp_path / "far", {"a": [0.95, 0.87, 0.85]}, PINNED)
    assert compare.with_seed_spread(compare.compare_runs(far, ref, 1e-6), far, ref).iloc[0]["class"] == "differs"
    for folder in (new, ref):
        (folder / "report").mkdir()
        pd.DataFrame({"claim": ["P2"], "verdict": ["reproduced"]}).to_csv(folder / "report/ledger.csv", index=False)
    assert compare.main([str(new), str(ref)]) == 0
    assert compare.main([str(new), str(ref), "--strict"]) == 1


def test_claims_numbers_and_fragility_are_shown_beside_the_references(tmp_path, capsys):
    values = {"a": [0.86, 0.87]}
    new, ref = _folder(tmp_path / "new", values, PINNED), _folder(tmp_path / "ref", values, PINNED)
    (new / "report").mkdir()
    (ref / "report").mkdir()
    pd.DataFrame({"claim": ["P6", "P3"], "verdict": ["inconclusive", "reproduced"], "numbers": ["n6", "n3"],
                  "means": ["orthoff 0.23 ± 0.05 (se, n = 3) vs plain 0.10", "—"],
                  "fragility": ["reproduced at 1 of 5 settings", "reproduced at 3 of 3 settings"]}).to_csv(
        new / "report/ledger.csv", index=False)
    pd.DataFrame({"claim": ["P6", "P3"], "verdict": ["reproduced", "reproduced"],
                  "numbers": ["old n6", "n3"]}).to_csv(ref / "report/ledger.csv", index=False)
    table = compare.compare_claim_numbers(new, ref).set_index("claim")
    assert table.loc["P6", "numbers"].startswith("orthoff 0.23") and table.loc["P6", "numbers_reference"] == "old n6"
    assert table.loc["P3", "numbers"] == "n3" and table.loc["P3", "fragility_reference"] == "—"
    assert compare.main([str(new), str(ref)]) == 1  # P6's verdict changed
    out = capsys.readouterr().out
    assert "- P6: orthoff 0.23 ± 0.05 (se, n = 3) vs plain 0.10 [reproduced at 1 of 5 settings]" in out
    assert "  reference: old n6 [—]" in out


def test_the_pins_promise_the_same_bits_only_between_intel_cpus_with_avx2():
    from orthojac.reference.env import bit_reproducible

    intel = {"vendor": "GenuineIntel", "flags": ["avx", "avx2", "fma", "avx512f"]}
    intel_avx2 = {"vendor": "GenuineIntel", "flags": ["avx", "avx2", "fma"]}
    amd = {"vendor": "AuthenticAMD", "flags": ["avx", "avx2", "fma"]}
    old_intel = {"vendor": "GenuineIntel", "flags": ["avx"]}
    assert bit_reproducible(intel, intel_avx2)  # AVX-512 or not: MKL's AVX2 branch on both
    assert not bit_reproducible(intel, amd)  # MKL's AUTO branch on the AMD CPU
    assert not bit_reproducible(amd, amd)  # not promised even between two of them
    assert not bit_reproducible(intel, old_intel)
    assert not bit_reproducible(intel, {})  # a manifest that records no CPU promises nothing

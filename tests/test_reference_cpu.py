"""The committed CPU reference (results/reference/cpu/, `make reference`): its verdicts are what
today's judges compute from its committed tables, and it carries its manifest and nothing heavy.
A change to a judge that alters a committed verdict fails here, in CI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from conftest import REPO
from orthojac.reference import PARTS
from orthojac.report import ledger_from_tables, read_tables

REFERENCE = REPO / "results/reference/cpu"


def test_the_committed_ledger_is_what_the_judges_compute_from_the_committed_tables():
    tables = read_tables(sorted((REFERENCE / "tables").glob("*.csv")))
    assert {"runs", "metrics", "spectra", "layers", "hlav_rnn", "hlav_linear", "h4"} <= set(tables)
    committed = pd.read_csv(REFERENCE / "report/ledger.csv", keep_default_na=False)
    recomputed = pd.read_csv(pd.io.common.StringIO(ledger_from_tables(tables).to_csv(index=False)),
                             keep_default_na=False)
    pd.testing.assert_frame_equal(recomputed, committed)


def test_the_reference_has_its_manifest_its_pages_and_no_weights():
    manifest = json.loads((REFERENCE / "manifest.json").read_text())
    for key in ("commit", "date", "command", "cpu", "cores", "torch", "python", "wall_seconds", "rules"):
        assert manifest[key] not in (None, "", {}), key
    assert manifest["rules"]["train"]["jobs"] > 0 and manifest["wall_seconds"] > 0
    assert all((REFERENCE / part).is_dir() for part in PARTS)
    assert (REFERENCE / "report/index.html").exists() and (REFERENCE / "report/ledger.csv").exists()
    files = [p for p in REFERENCE.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pt", ".pth", ".ckpt")]
    assert sum(p.stat().st_size for p in files) <= 25 * 2**20


def _section(title: str, until: str) -> str:
    text = (REPO / "docs/replication.md").read_text()
    return " ".join(text[text.index(title):text.index(until, text.index(title))].split())


def _minus(x: float, digits: int) -> str:
    """x as docs/replication.md writes it: a sign (− or +) and `digits` decimals."""
    return f"{x:+.{digits}f}".replace("-", "−")


def test_docs_section_4_3_reads_its_numbers_off_the_committed_tables():
    """docs/replication.md §4.3 (where a verdict says more than its evidence) quotes numbers of the
    committed reference; each is recomputed here from its tables, so a regenerated reference
    that moves one fails until the section is written again."""
    from orthojac.claims import compare_means
    from orthojac.claims.thesis import h1_curve_average
    from orthojac.claims.thesis_theory import h_c6_cells

    doc = _section("### 4.3 Where a verdict says more than its evidence", "## 5. ")
    t = read_tables(sorted((REFERENCE / "tables").glob("*.csv")))
    m, runs, layers = t["metrics"], t["runs"], t["layers"]
    quoted = []

    # P2: the orthoff arm's last two epochs, and its trained body's singular values
    val = m[(m["experiment"] == "depth200_orthoff_sigma") & (m["split"] == "val") & (m["metric"] == "accuracy")]
    curve = val.pivot_table(index="run", columns="epoch", values="value").sort_index()
    last = curve.columns.max()
    quoted.append(", ".join(f"{v:.3f}" for v in curve[last].iloc[:2]) + f" and {curve[last].iloc[2]:.3f}")
    gains = curve[last] - curve[last - 1]
    quoted.append(", ".join(f"{v:.2f}" for v in gains.iloc[:2]) + f" and {gains.iloc[2]:.2f}")
    s = t["spectra"]
    s = s[(s["experiment"] == "depth200_orthoff_sigma") & (s["checkpoint"] == "final")]["sigma"]
    quoted.append(f"[{s.min():.3f}, {s.max():.0f}]")

    # P4: equal starts, and init − soft by seed after the last epoch
    test = m[(m["experiment"] == "regimes50") & (m["split"] == "test") & (m["metric"] == "accuracy")]
    acc = test.pivot_table(index="run", columns="epoch", values="value")
    init, soft = (acc[acc.index.str.startswith(f"regime={r}+")].sort_index() for r in ("init", "soft"))
    assert list(init[0]) == list(soft[0])
    quoted.append("(" + ", ".join(f"{v:.4f}" for v in init[0]) + ")")
    d = init[acc.columns.max()].to_numpy() - soft[acc.columns.max()].to_numpy()
    quoted.append(", ".join(_minus(v, 4) for v in d[:2]) + f" and {_minus(d[2], 4)}")

    # P5: ε at initialisation and after training, by δ
    eps = layers[layers["metric"] == "max_abs_dev"].merge(runs[["experiment", "run", "family", "delta"]])
    eps = eps[eps["family"] == "limit"].groupby(["delta", "checkpoint"])["value"].max()
    quoted += [f"δ = 0.01: {eps[(0.01, 'init')]:.4f}", f"δ = 0.03: {eps[(0.03, 'init')]:.4f}",
               f"{min(eps[(x, 'final')] for x in (0.01, 0.03, 0.1)):.2f}–"
               f"{max(eps[(x, 'final')] for x in (0.01, 0.03, 0.1)):.2f} for δ = 0.01–0.1",
               f"{eps[(0.0, 'final')]:.2f} for δ = 0"]

    # P7: the two-point rate (ln g_200 − ln g_0)/200 for d = 1, median over seeds
    g = layers[layers["metric"] == "grad_norm"].merge(runs[["experiment", "run", "family", "pso_d", "depth"]])
    g = g[(g["family"] == "pso") & (g["pso_d"] == 1)]
    ends = g.groupby("run").apply(lambda r: (np.log(r.loc[r["layer"].idxmax(), "value"])
                                             - np.log(r.loc[r["layer"].idxmin(), "value"])) / r["depth"].iloc[0])
    quoted.append(f"{abs(ends.median()):.4f} for d = 1")

    # H-C1 by averaging window, the judge's definitions
    h = t["hlav_rnn"]
    for first, label in ((1, "epochs 1–5 (the rule)"), (2, "epochs 2–5"), (3, "epochs 3–5"), (4, "epochs 4–5"),
                         (5, "epoch 5 alone")):
        c = h1_curve_average(h, first_epoch=first)
        ortho = c[c["configuration"] != "NoOrthogonal"].groupby("seed")["value"].mean()
        glorot = c[c["configuration"] == "NoOrthogonal"].groupby("seed")["value"].mean()
        r = compare_means("orthogonal", ortho, "Glorot", glorot, 0.0)
        quoted.append(f"| {label} | {_minus(r.diff, 4)} ± {r.se:.4f} | {r.verdict} |")

    # H-C6: the ReLU cells at L = 32, variance against theory
    cells = h_c6_cells(t["h4"])
    relu = cells[(cells["activation"] == "relu") & (cells["depth"] == 32) & (cells["metric"] == "variance")]
    for weights in ("gaussian", "orthogonal"):
        row = relu[relu["weights"] == weights].iloc[0]
        quoted.append(f"{100 * (row['empirical'] / row['theory'] - 1):.0f} %")
        quoted.append(f"{row['empirical']:.1f} against {row['theory']:.0f}")
    assert (cells["activation"] == "hardtanh").sum() == 20 and len(cells) == 60

    missing = [q for q in quoted if q not in doc]
    assert not missing, f"docs/replication.md §4.3 no longer quotes the committed tables: {missing}"

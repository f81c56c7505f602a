"""The committed CPU reference (results/reference/cpu/, `make reference`): its verdicts are what
today's judges compute from its committed tables, and it carries its manifest and nothing heavy.
A change to a judge that alters a committed verdict fails here, in CI."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pandas as pd

from conftest import REPO
from orthojac.reference import PARTS
from orthojac.report import ledger_from_tables, read_tables

REFERENCE = REPO / "results/reference/cpu"


def _assert_ledger_is_the_judges(reference, pattern: str) -> dict[str, pd.DataFrame]:
    """`reference`/report/ledger.csv is what today's judges compute from its tables (`pattern`);
    returns the tables."""
    tables = read_tables(sorted((reference / "tables").glob(pattern)))
    assert {"runs", "metrics", "spectra", "layers", "hlav_rnn", "hlav_linear", "h4"} <= set(tables)
    committed = pd.read_csv(reference / "report/ledger.csv", keep_default_na=False)
    recomputed = pd.read_csv(pd.io.common.StringIO(ledger_from_tables(tables).to_csv(index=False)),
                             keep_default_na=False)
    pd.testing.assert_frame_equal(recomputed, committed)
    return tables


def test_the_committed_ledger_is_what_the_judges_compute_from_the_committed_tables():
    _assert_ledger_is_the_judges(REFERENCE, "*.csv")


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


def _span(values, digits: int, sep: str = "–") -> str:
    return f"{min(values):.{digits}f}{sep}{max(values):.{digits}f}"


def test_docs_section_4_3_reads_its_numbers_off_the_committed_tables():
    """docs/replication.md §4.3 (where a verdict says more than its evidence) quotes numbers of the
    committed reference; each is recomputed here from its tables (the H-C1 windows and H-C6 cells
    through the judges' own functions), so a regenerated reference that moves one fails until the
    section is written again. Not recomputed: the rebuilt networks' active units (they need the
    data) and the two-seed H-C1 numbers of an earlier reference (git history)."""
    from orthojac.claims import compare_means
    from orthojac.claims.thesis import h1_curve_average
    from orthojac.claims.thesis_theory import h_c6_cells

    doc = _section("### 4.3 Where a verdict says more than its evidence", "## 5. ")
    t = read_tables(sorted((REFERENCE / "tables").glob("*.csv")))
    m, runs, layers, diag = t["metrics"], t["runs"], t["layers"], t["diagnostics"]
    quoted = []

    # P2: the orthoff arm's last two epochs, its screen, and both arms' weights and body σ after training
    val = m[(m["experiment"] == "depth200_orthoff_sigma") & (m["split"] == "val") & (m["metric"] == "accuracy")]
    curve = val.pivot_table(index="run", columns="epoch", values="value").sort_index()
    last = curve.columns.max()
    for column, digits in ((curve[last], 3), (curve[last] - curve[last - 1], 2), (curve[last - 1], 3)):
        quoted.append(", ".join(f"{v:.{digits}f}" for v in column.iloc[:2]) + f" and {column.iloc[2]:.{digits}f}")
    screens = t["screens"]
    chosen = screens[(screens["screen"] == "screen_orthoff_sigma") & screens["chosen"]]
    assert len(chosen) == 1 and chosen["lr"].iloc[0] == screens["lr"].min()
    quoted.append(f"scored {chosen['score'].iloc[0]:.3f}")
    fold, orthoff = (diag[diag["experiment"] == e] for e in ("depth200_fold", "depth200_orthoff_sigma"))
    quoted += [f"fold's ‖BBᵀ − I‖₂ is {_span(fold['bb'], 2)}",
               f"[{fold['sigma_min'].min():.2f}, {fold['sigma_max'].max():.2f}]",
               f"orthoff's ‖BBᵀ − I‖₂ is {_span(orthoff['bb'], 2)}",
               f"[{orthoff['sigma_min'].min():.3f}, {orthoff['sigma_max'].max():.0f}]"]

    # P4: equal starts, init − soft by seed after the last epoch, weight defects
    test = m[(m["experiment"] == "regimes50") & (m["split"] == "test") & (m["metric"] == "accuracy")]
    acc = test.pivot_table(index="run", columns="epoch", values="value")
    init, soft = (acc[acc.index.str.startswith(f"regime={r}+")].sort_index() for r in ("init", "soft"))
    assert list(init[0]) == list(soft[0])
    quoted.append("(test " + ", ".join(f"{v:.4f}" for v in init[0]) + ")")
    d = init[acc.columns.max()].to_numpy() - soft[acc.columns.max()].to_numpy()
    quoted.append(", ".join(_minus(v, 4) for v in d[:2]) + f" and {_minus(d[2], 4)}")
    r50 = diag[diag["experiment"] == "regimes50"]
    quoted.append(f"{_span(r50[r50['regime'] == 'init']['bb'], 2)} for init, "
                  f"{_span(r50[r50['regime'] == 'soft']['bb'], 2)} for soft")

    # P5: ε by seed at initialisation (over δ) and after training
    eps = layers[layers["metric"] == "max_abs_dev"].merge(runs[["experiment", "run", "family", "delta", "seed"]])
    eps = eps[eps["family"] == "limit"].groupby(["delta", "checkpoint", "seed"])["value"].max()
    start = eps.xs("init", level="checkpoint")
    ratio = (start / start.index.get_level_values("delta"))[start.index.get_level_values("delta") > 0]
    end = eps.xs("final", level="checkpoint")
    trained = end[end.index.get_level_values("delta").isin([0.01, 0.03, 0.1])]
    worst = trained.groupby(level="delta").max()
    quoted += [f"ε is {_span(ratio, 2)} δ in every seed", f"0.0198 at δ = 0.01",
               f"{start.loc[0.03].max():.4f} at δ = 0.03", f"{_span(trained, 2)} by seed for δ = 0.01–0.1",
               f"(worst seeds {_span(worst, 2)})", f"{_span(end.loc[0.0], 2)} for δ = 0"]
    assert f"{start.loc[0.01].max():.4f}" == "0.0198"

    # P7: the two-point rate (ln g_200 − ln g_0)/200 for d = 1, median over seeds, and its theory
    g = layers[layers["metric"] == "grad_norm"].merge(runs[["experiment", "run", "family", "pso_d", "depth", "width"]])
    g = g[(g["family"] == "pso") & (g["pso_d"] == 1)]
    ends = g.groupby("run").apply(lambda r: (np.log(r.loc[r["layer"].idxmax(), "value"])
                                             - np.log(r.loc[r["layer"].idxmin(), "value"])) / r["depth"].iloc[0])
    quoted.append(f"{abs(ends.median()):.4f} for d = 1")
    quoted.append(f"gives {np.log(np.sqrt(g['width'].iloc[0])) / g['depth'].iloc[0]:.4f}")

    # H-C1 by averaging window and by epoch, the judge's definitions
    h = t["hlav_rnn"]

    def h_c1(table, first):  # orthogonal − Glorot over the curve from epoch `first` to the table's last
        c = h1_curve_average(table, first_epoch=first)
        ortho = c[c["configuration"] != "NoOrthogonal"].groupby("seed")["value"].mean()
        glorot = c[c["configuration"] == "NoOrthogonal"].groupby("seed")["value"].mean()
        return compare_means("orthogonal", ortho, "Glorot", glorot, 0.0)

    for first, label in ((1, "epochs 1–5 (the rule)"), (2, "epochs 2–5"), (3, "epochs 3–5"), (4, "epochs 4–5"),
                         (5, "epoch 5 alone")):
        r = h_c1(h, first)
        quoted.append(f"| {label} | {_minus(r.diff, 4)} ± {r.se:.4f} | {r.verdict} |")
    by_epoch = [h_c1(h[h["epoch"] <= epoch], epoch).diff for epoch in range(1, int(h["epoch"].max()) + 1)]
    quoted.append(", ".join(_minus(v, 3) for v in by_epoch[:-1]) + f" and {_minus(by_epoch[-1], 3)}")
    quoted.append(f"epoch 1 supplies {100 * by_epoch[0] / sum(by_epoch):.0f} %")

    # H-C6: its cells, and the ReLU cells at L = 32 against theory and the allowance
    cells = h_c6_cells(t["h4"])
    assert (cells["activation"] == "hardtanh").sum() == 20 and len(cells) == 60
    z = statistics.NormalDist().inv_cdf(1 - 0.05 / (2 * len(cells)))
    quoted.append(f"z = {z:.2f}")
    relu = cells[(cells["activation"] == "relu") & (cells["depth"] == 32) & (cells["metric"] == "variance")]
    allowed, seeds_only = [], []
    for weights in ("gaussian", "orthogonal"):
        row = relu[relu["weights"] == weights].iloc[0]
        finite = row["depth"] / row["width"] * row["theory"]
        quoted += [f"{100 * (row['empirical'] / row['theory'] - 1):.0f} %",
                   f"{row['empirical']:.1f} against {row['theory']:.0f}"]
        allowed.append((z * row["se"] + finite) / row["theory"])
        seeds_only.append((z * row["sd"] / np.sqrt(row["n"]) + finite) / row["theory"])
    quoted += [f"is {allowed[0]:.1f}× and {allowed[1]:.1f}× the theory value",
               f"would be {seeds_only[0]:.2f}× and {seeds_only[1]:.2f}×"]
    h4 = t["h4"]
    deep = h4[(h4["activation"] == "relu") & (h4["metric"] == "variance")].groupby(["weights", "depth"])[
        ["empirical", "theory"]].mean()
    quoted += [f"{_minus(100 * (deep.loc[('gaussian', 64), 'empirical'] / 128 - 1), 0)} % (Gaussian, L = 64)",
               f"{_minus(100 * (deep.loc[('orthogonal', 200), 'empirical'] / 200 - 1), 0)} % (orthogonal, L = 200)"]
    assert deep.loc[("gaussian", 64), "theory"] == 128 and deep.loc[("orthogonal", 200), "theory"] == 200

    missing = [q for q in quoted if " ".join(q.split()) not in doc]
    assert not missing, f"docs/replication.md §4.3 no longer quotes the committed tables: {missing}"


GPU_VERIFY = REPO / "results/reference/gpu-verify"


def test_the_gpu_verify_ledger_is_what_the_judges_compute_from_its_tables():
    """results/reference/gpu-verify (config/verify.yaml on one GPU, benchmarks/gpu_check.sh): its
    ledger, written on the GPU machine, is what today's judges compute from its committed tables
    (gzipped, to keep the checkout within what travels to a GPU machine). A judge change that moves
    it is answered without a GPU: the ledger is a function of the tables, written again from them."""
    tables = _assert_ledger_is_the_judges(GPU_VERIFY, "*.csv.gz")
    manifest = json.loads((GPU_VERIFY / "manifest.json").read_text())
    assert manifest["device"] == "cuda" and manifest["gpu"].startswith("NVIDIA")
    assert set(tables["runs"]["device"]) == {"cuda"}

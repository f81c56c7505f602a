"""orthojac.report.scale: the scale each verdict rests on, read off the tables; the reference beside it."""

from __future__ import annotations

import pandas as pd

from orthojac.report.scale import claim_scale, with_reference, with_scale


def _runs():
    rows = []
    for seed in range(3):
        for family in ("fold", "plain"):
            rows.append({"experiment": "depth200", "run": f"{family}{seed}", "claims": "P2;P3", "arch": "dense",
                         "width": 128, "channels": 16, "depth": 200, "epochs": 2, "seed": seed,
                         "family": family, "device": "cpu"})
    rows.append({"experiment": "p1", "run": "conv", "claims": "P1", "arch": "conv", "width": 128, "channels": 2,
                 "depth": 50, "epochs": 0, "seed": 0, "family": "fold", "device": "cuda:0"})
    return pd.DataFrame(rows)


def test_the_scale_of_a_paper_claim_names_architecture_size_depth_epochs_seeds_device():
    runs = _runs()
    assert claim_scale("P2", runs, {}) == "dense width 128, depth 200, 2 epochs, 3 seeds, cpu"
    assert claim_scale("P1", runs, {}) == "conv C = 2, depth 50, 0 epochs, 1 seed, cuda"
    assert claim_scale("P5", runs, {}) == "not run"


def test_the_scale_of_thesis_claims_comes_from_their_tables():
    h1 = pd.DataFrame({"dataset": ["mnist"] * 2, "train_size": [48000] * 2, "epoch": [0, 5], "seed": [0, 1]})
    lstm = pd.DataFrame({"status": ["data unavailable"], "train_size": [0], "epoch": [0], "seed": [0]})
    assert claim_scale("H-C2", pd.DataFrame(), {"hlav_rnn": h1}) == "RNN on mnist, 48000 training sequences, 5 epochs, 2 seeds"
    assert claim_scale("H-C4", pd.DataFrame(), {"hlav_lstm": lstm}) == "data unavailable (nothing trained)"
    assert claim_scale("H-C5", pd.DataFrame(), {}) == "not run"


def test_the_reference_verdict_sits_beside_the_verdict(tmp_path):
    ledger = pd.DataFrame({"claim": ["P2", "P3"], "statement": ["s2", "s3"], "verdict": ["inconclusive", "reproduced"]})
    ledger = with_scale(ledger, _runs(), {})
    assert list(ledger.columns) == ["claim", "statement", "scale", "verdict"]
    ref = tmp_path / "ledger.csv"
    pd.DataFrame({"claim": ["P2"], "verdict": ["reproduced"], "scale": ["dense width 128"]}).to_csv(ref, index=False)
    shown = with_reference(ledger, ref, "CPU reference")
    assert list(shown["CPU reference verdict"]) == ["reproduced", "not in the reference"]
    assert list(shown["CPU reference scale"]) == ["dense width 128", ""]
    missing = with_reference(ledger, tmp_path / "none.csv", "CPU reference")
    assert set(missing["CPU reference verdict"]) == {"not in the reference"}


def test_a_new_claim_gets_the_scale_of_the_tables_it_reads(monkeypatch):
    """A claim is one Claim: its scale comes from what it reads (Claim.reads), not from its id."""
    import dataclasses

    from orthojac.claims import CLAIMS

    runs = _runs().assign(claims=lambda r: r["claims"].str.replace("P2;P3", "P2;P3;X1"))
    monkeypatch.setitem(CLAIMS, "X1", dataclasses.replace(CLAIMS["P3"], id="X1"))  # reads runs and metrics
    monkeypatch.setitem(CLAIMS, "X2", dataclasses.replace(CLAIMS["H-C5"], id="X2"))  # reads hlav_linear
    assert claim_scale("X1", runs, {}) == "dense width 128, depth 200, 2 epochs, 3 seeds, cpu"
    linear = pd.DataFrame({"width": [64, 64], "depth": [2, 8], "seed": [0, 1]})
    assert claim_scale("X2", pd.DataFrame(), {"hlav_linear": linear}) == "linear width 64, depths 2/8, 2 seeds"
    assert claim_scale("X2", pd.DataFrame(), {}) == "not run"

"""The claims as objects, the one comparison rule (compare_means) and the fragility of each
verdict (every threshold moved by ±50 %)."""

import re

import pandas as pd
import pytest

from conftest import REPO
from orthojac import claims
from orthojac.claims import (
    CLAIMS, INCONCLUSIVE, JUDGES, NOT_REPRODUCED, P6_MARGIN, REPRODUCED, STAT_Z, combine, compare_means, fragility,
    ledger, thresholds,
)
from test_claims import _p6, _tables

COMPARISON_CLAIMS = ("P2", "P4", "P5", "P6", "H-C1", "H-C2")


@pytest.mark.parametrize("a, b, margin, verdict", [
    ([0.90, 0.92], [0.80, 0.82], 0.05, REPRODUCED),        # d = 0.10 ± 0.01: [0.08, 0.12] above 0.05
    ([0.80, 0.82], [0.90, 0.92], -0.02, NOT_REPRODUCED),   # d = −0.10: [−0.12, −0.08] below −0.02
    ([0.80, 0.90], [0.80, 0.82], 0.0, INCONCLUSIVE),       # d = 0.04 ± 0.051: straddles 0
    ([0.75, 0.75], [0.50, 0.50], 0.25, INCONCLUSIVE),      # d = margin exactly (binary fractions), se 0
])
def test_compare_means_reaches_each_verdict(a, b, margin, verdict):
    c = compare_means("a", a, "b", b, margin)
    assert c.verdict == verdict
    assert c.diff == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
    assert f"against margin {margin:+.4f}: {verdict}" in c.text


def test_compare_means_standard_error_and_interval():
    c = compare_means("a", [1.0, 2.0, 3.0], "b", [0.0, 0.0], 0.0)
    assert c.se == pytest.approx((1.0 / 3) ** 0.5)  # s_a² = 1, n_a = 3; s_b = 0
    low = c.diff - STAT_Z * c.se
    assert c.verdict == (REPRODUCED if low > 0 else INCONCLUSIVE)
    assert c.means == "a 2.0000 ± 0.5774 (se, n = 3) vs b 0.0000 ± 0.0000 (se, n = 2)" and c.n == "3 vs 2"


def test_compare_means_needs_two_seeds_a_side_and_leaves_unmeasured_values_out():
    c = compare_means("a", [0.9], "b", [0.1, 0.1], 0.0)
    assert c.verdict == INCONCLUSIVE and "a has 1 seed(s) < 2: no standard error" in c.text
    c = compare_means("a", [0.9, float("nan"), 0.9], "b", [0.1, 0.1], 0.0)
    assert c.verdict == REPRODUCED and c.n == "2 vs 2"


def test_combine_one_failure_fails_all_must_pass():
    r, n, i = (compare_means("a", x, "b", [0.5, 0.5], 0.0) for x in ([0.9, 0.9], [0.1, 0.1], [0.4, 0.7]))
    assert (r.verdict, n.verdict, i.verdict) == (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE)
    assert combine([r, r]) == REPRODUCED and combine([r, i]) == INCONCLUSIVE and combine([r, i, n]) == NOT_REPRODUCED
    assert combine([]) == INCONCLUSIVE


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_each_claim_is_one_object_with_its_quote_thresholds_and_judge(claim):
    c = CLAIMS[claim]
    assert c.id == claim and c.judge is JUDGES[claim]
    assert c.quote and c.statistic and c.reads and c.thresholds
    for name in c.thresholds:
        assert isinstance(getattr(claims, name), (int, float)), name
    assert c.comparison == (claim in COMPARISON_CLAIMS)
    if c.comparison:
        assert "STAT_Z" in c.thresholds


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_each_claims_source_sentence_is_quoted_in_the_projects_documentation(claim):
    doc = re.sub(r"\s+", " ", (REPO / "docs/replication.md").read_text().replace("\\|", "|"))  # table escapes
    assert re.sub(r"\s+", " ", CLAIMS[claim].quote) in doc, claim


def test_the_ledger_carries_rule_numbers_margin_and_fragility_before_the_provenance():
    table = ledger(*_tables({("fold", 200): [0.86, 0.87], ("resnet", 200): [0.87, 0.86]}))
    assert list(table.columns) == ["claim", "source", "statement", "quote", "numbers", "tolerance", "rule", "n",
                                   "means", "margin", "fragility", "tolerance_provenance", "verdict"]
    row = table.set_index("claim").loc["P2"]
    assert row["n"] == "fold: 2 vs 2" and "fold − resnet > -0.02" in row["margin"]
    assert row["fragility"].startswith("reproduced at ")
    assert table.set_index("claim").loc["P3", "rule"] == claims.THRESHOLD_RULE


def test_fragility_counts_the_settings_that_reproduce_and_names_those_that_change():
    """orthoff 0.36 against plain 0.30 (seeds agree, se 0): the difference 0.06 clears the 0.05
    margin and its ×0.5, not its ×1.5 (0.075); z does not matter at se 0."""
    row = _p6({"abs": [0.36, 0.36]}, [0.30, 0.30])
    assert row["verdict"] == REPRODUCED
    assert row["fragility"].startswith("reproduced at 4 of 5 settings")
    assert f"P6_MARGIN ×1.5 ({P6_MARGIN * 1.5:g}) → not reproduced" in row["fragility"]


def test_fragility_rows_and_a_verdict_no_setting_changes():
    runs, metrics, spectra = _tables({("fold", 200): [0.865, 0.865], ("resnet", 200): [0.87, 0.87]})
    text, rows = fragility("P2", lambda: JUDGES["P2"](runs, metrics, spectra))
    assert text.startswith("reproduced at 7 of 7 settings") and "no setting changes the verdict" in text
    assert [(r["threshold"], r["factor"]) for r in rows[1:3]] == [("P2_TOL", 0.5), ("P2_TOL", 1.5)]


def test_a_threshold_at_zero_is_named_not_moved():
    """H-C1's margin is 0 (stated: "lower"): ±50 % of 0 is 0, so it is named, not counted."""
    text, rows = fragility("H-C1", lambda: JUDGES["H-C1"](pd.DataFrame(), pd.DataFrame(), pd.DataFrame()))
    assert "not moved (0): H_C1_MARGIN" in text and len(rows) == 3 and text.startswith("reproduced at 0 of 3")


def test_thresholds_are_restored_and_unknown_names_refused():
    before = claims.P6_MARGIN
    with thresholds(P6_MARGIN=0.5):
        assert claims.P6_MARGIN == 0.5
    assert claims.P6_MARGIN == before
    with pytest.raises(KeyError, match="NOT_A_THRESHOLD"):
        with thresholds(NOT_A_THRESHOLD=1.0):
            pass


def test_a_claim_can_read_every_table_the_workflow_makes():
    """Claim.arguments hands a judge any table of results/tables/ (the claims stage imports no
    workflow, so this is where the two meet): a new claim may read any of them."""
    from orthojac.claims.rules import POSITIONAL_TABLES, TABLE_ARGUMENTS
    from orthojac.workflow import EXPERIMENTS

    made = {t for e in EXPERIMENTS.values() for t in e.tables}
    assert made == set(POSITIONAL_TABLES) | set(TABLE_ARGUMENTS)

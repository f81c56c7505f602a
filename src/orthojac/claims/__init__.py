"""The claims ledger: each claim of the paper (P1–P7) and of Hlav (2019) (H-C1–H-C6) judged from
the tidy tables.

A verdict is computed, never typed: `reproduced`, `not reproduced` or `inconclusive`. Every row
shows the numbers judged (seed means ± their spread, with n), the tolerance, and where each of its
thresholds comes from (`tolerance_provenance`: `stated: <where a source text says it>` or
`choice: <why>`). Missing evidence is `inconclusive`, never a pass: a claim whose experiment was
not run in this configuration, ran below the scale the claim is about, or lacks part of what the
claim covers, is `inconclusive` and says which part and why.

Each claim is one `Claim` object beside its judge, in the module of its source: its statement, the
source sentence it encodes (quoted), the statistic, the thresholds (module constants), the
provenance of each, the tables its judge reads, and the judge. This package registers them in
CLAIMS, in the ledger's order, and `ledger_of` judges them from the tables by name: a new claim is
one Claim added to the tuple below.

    rules.py           the comparison rule (compare_means), Verdict, Claim, the registry, spread,
                       judge_settled, thresholds and fragility
    runs.py            the training runs a paper claim reads, selected and scored
    paper.py           P1–P4            paper_training.py   P5–P7
    thesis.py          H-C1–H-C4 (Hlav §5: the recurrent networks)
    thesis_theory.py   H-C5, H-C6 (Hlav §3: deep linear networks, Jacobian spectra)

Every comparison claim (P2, P4, P5, P6, H-C1, H-C2) is decided by one rule, `compare_means`: the
difference of the two seed means with its standard error, against a margin fixed before the data
(a source sentence or a stated a-priori choice). Every verdict carries its fragility: the verdict
again with each threshold moved by ±50 % (`fragility`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

import pandas as pd

from .rules import (  # noqa: F401
    REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, ORTHOGONAL_FAMILIES, INIT_STUDY_PREFIX, DIVERGED_SCORE, STAT_Z,
    MIN_SEEDS, FRAGILITY_FACTORS, RULE_WHY, Comparison, difference_of_means, compare_means, combine, Verdict, Claim,
    POSITIONAL_TABLES, TABLE_ARGUMENTS, COMPARISON_RULE, THRESHOLD_RULE, spread, previous_epoch, judge_settled,
    threshold_value, thresholds, fragility)
from .runs import (  # noqa: F401
    final_accuracy, NOT_SETTINGS, weight_diagnostics)
from .paper import (  # noqa: F401
    P1_TOL, P1_REF_DEPTH, P1_DTYPE, P1_CELLS, P1_MIN_WIDTH, P1_MIN_BIAS, P2_DEPTH, P2_TOL, P2_COLLAPSE, P3_MARGIN,
    P3_MIN_DEPTH, P4_TOL, P4_MIN_ACCURACY, first_breakpoint, p1_tolerance, judge_p1, judge_p2, judge_p3, judge_p4)
from .paper_training import (  # noqa: F401
    P5_ACCURACY, P5_ACC_TOL, P5_EPS, P6_DEPTH, P6_MARGIN, P6_ACTIVATIONS, P7_MIN_DEPTH, P7_FLAT, P7_DECAY, judge_p5,
    judge_p6, gradient_decay_rate, judge_p7)
from .thesis import (  # noqa: F401
    H1_MIN_EPOCHS, H1_MIN_TRAIN, H1_DATASET, H1_CHANCE, H_C1_MARGIN, H_C1_FIRST_EPOCH, H_C2_MARGIN, H_C3_GAIN_TOL,
    H_C3_KAPPA_RATIO, H2_MIN_EPOCHS, H2_MIN_TRAIN, H2_MIN_SEEDS, H2_CHANCE, H_C4_ALPHA, H_C4_CLEAR,
    H_C4_SIMULATIONS, H1_KEYS, h1_curve_average, judge_h_c1, judge_h_c2, judge_h_c3, studentized_range_critical,
    configurations_differ, no_difference_test, judge_h_c4)
from .thesis_theory import (  # noqa: F401
    H_C6_WIDTH, H_C6_ALPHA, H_C6_FW, H_C6_FLOOR, H_C6_DEPTH_RATIO, H_C6_MIN_SEEDS, H_C5_FLAT, H_C5_GROWTH,
    H_C5_MIN_DEPTHS, H_C5_MIN_RANGE, H_C5_MIN_SEEDS, H_C5_RESOLUTION, h3_learning_times, h3_cells, judge_h_c5,
    h_c6_cells, judge_h_c6)
from .paper import CLAIM_P1, CLAIM_P2, CLAIM_P3, CLAIM_P4
from .paper_training import CLAIM_P5, CLAIM_P6, CLAIM_P7
from .rules import CLAIMS
from .thesis import CLAIM_H_C1, CLAIM_H_C2, CLAIM_H_C3, CLAIM_H_C4
from .thesis_theory import CLAIM_H_C5, CLAIM_H_C6

# The registry, in the ledger's order: the one place a claim is added.
CLAIMS.update((c.id, c) for c in (CLAIM_P1, CLAIM_P2, CLAIM_P3, CLAIM_P4, CLAIM_P5, CLAIM_P6, CLAIM_P7,
                                  CLAIM_H_C1, CLAIM_H_C2, CLAIM_H_C3, CLAIM_H_C4, CLAIM_H_C5, CLAIM_H_C6))


class _Judges(Mapping):
    """claim id → its judge, read from CLAIMS (so a claim registered there has its judge here)."""

    def __getitem__(self, claim: str):
        return CLAIMS[claim].judge

    def __iter__(self) -> Iterator[str]:
        return iter(CLAIMS)

    def __len__(self) -> int:
        return len(CLAIMS)


JUDGES: Mapping = _Judges()


class _ProvenanceSources(Mapping):
    """claim id → the provenance of its thresholds, [(threshold, "stated" or "choice", where / why)]."""

    def __getitem__(self, claim: str):
        return CLAIMS[claim].provenance

    def __iter__(self) -> Iterator[str]:
        return iter(CLAIMS)

    def __len__(self) -> int:
        return len(CLAIMS)


class _Provenance(_ProvenanceSources):
    """claim id → its ledger column `tolerance_provenance` (Claim.tolerance_provenance)."""

    def __getitem__(self, claim: str):
        return CLAIMS[claim].tolerance_provenance


TOLERANCE_SOURCES: Mapping = _ProvenanceSources()
TOLERANCE_PROVENANCE: Mapping = _Provenance()


def ledger_of(tables: Mapping[str, pd.DataFrame | None], claims: Iterable[str] | None = None,
              with_fragility: bool = True) -> pd.DataFrame:
    """One row per claim of `claims` (default: every claim of CLAIMS, in order; columns: those of
    Verdict), each judged (judge_settled) from the tidy `tables` by name, the ones its Claim
    `reads` (runs, metrics, spectra: an empty table where absent; each other one: None where
    absent). `with_fragility`: fill the `fragility` column (each threshold ±50 %, fragility)."""
    ids = list(CLAIMS) if claims is None else list(claims)
    unknown = [c for c in ids if c not in CLAIMS]
    if unknown:
        raise KeyError(f"not a claim of orthojac.claims: {', '.join(unknown)} (claims: {', '.join(CLAIMS)})")
    empty = pd.DataFrame()
    runs, metrics, spectra = (tables.get(name, empty) for name in POSITIONAL_TABLES)
    rows = []
    for c in ids:
        arguments = CLAIMS[c].arguments(tables)

        def once(c=c, arguments=arguments):
            return judge_settled(c, runs, metrics, spectra, **arguments)
        verdict = once()
        if with_fragility:
            verdict.fragility = fragility(c, once)[0]
        rows.append(verdict.as_row())
    return pd.DataFrame(rows)


def ledger(runs: pd.DataFrame, metrics: pd.DataFrame, spectra: pd.DataFrame,
           h4: pd.DataFrame | None = None, hlav: pd.DataFrame | None = None,
           layers: pd.DataFrame | None = None, hlav_lstm: pd.DataFrame | None = None,
           hlav_linear: pd.DataFrame | None = None, with_fragility: bool = True) -> pd.DataFrame:
    """ledger_of for tables given one by one: `h4`, the theory table of orthojac.thesis.theory;
    `hlav`, the H1 table of orthojac.thesis.rnn (hlav_rnn); `layers`, the per-layer table of the
    spectrum stage; `hlav_lstm`, the H2 table of orthojac.thesis.lstm; `hlav_linear`, the H3 table
    of orthojac.thesis.linear. Each claim's judge gets the ones its Claim reads."""
    tables = {"runs": runs, "metrics": metrics, "spectra": spectra, "h4": h4, "hlav_rnn": hlav, "layers": layers,
              "hlav_lstm": hlav_lstm, "hlav_linear": hlav_linear}
    return ledger_of(tables, with_fragility=with_fragility)

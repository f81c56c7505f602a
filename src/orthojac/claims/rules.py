"""The rule every claim is judged by, in one place: the verdicts, `compare_means` (the one
comparison rule: the difference of two seed means with its standard error against a margin fixed
before the data), `Verdict` (a ledger row), `Claim` (one claim: its source, quote, statistic,
thresholds, the tables its judge reads, the judge and the provenance of each threshold), `spread`,
the registry `CLAIMS` (filled by orthojac.claims), `judge_settled` (the verdict must be the same one
epoch earlier) and `fragility` (each threshold moved by ±50 %), which moves a threshold by name
(`thresholds`) in whichever module of orthojac.claims reads it.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"

ORTHOGONAL_FAMILIES = ("fold", "orthoff")
INIT_STUDY_PREFIX = "init_study"  # the depth-200 initialisation study: its own table, no verdict
DIVERGED_SCORE = 0.0  # P2–P6: a diverged seed scores accuracy 0 in the seed mean (it did not train)

STAT_Z = 2.0  # the comparison rule: difference of seed means ± 2 standard errors (choice, see compare_means)
MIN_SEEDS = 2  # the comparison rule needs ≥ 2 seeds a side: a standard error needs a spread
FRAGILITY_FACTORS = (0.5, 1.5)  # each threshold moved by −50 % and +50 % (fragility)

RULE_WHY = (f"one rule for every comparison claim (compare_means): z = {STAT_Z:g} puts ≈ 2.3 % of a normal "
            "difference's mass beyond each end of the interval; with 2–3 seeds the se is itself uncertain "
            "(a t-interval would be wider), which the fragility (z ×0.5, ×1.5) shows; ≥ 2 seeds a side")


@dataclass
class Comparison:
    """One comparison of the rule compare_means: side a against side b, the claim being
    mean(a) − mean(b) > margin."""
    label: str
    name_a: str
    name_b: str
    values_a: list
    values_b: list
    margin: float
    verdict: str
    diff: float = float("nan")
    se: float = float("nan")
    reason: str = ""

    @property
    def means(self) -> str:
        return f"{_side_text(self.name_a, self.values_a)} vs {_side_text(self.name_b, self.values_b)}"

    @property
    def n(self) -> str:
        return f"{len(self.values_a)} vs {len(self.values_b)}"

    @property
    def text(self) -> str:
        head = f"{self.label}: " if self.label else ""
        if self.reason:
            return f"{head}{self.reason}: {self.verdict}"
        return (f"{head}{self.name_a} − {self.name_b} = {self.diff:+.4f} ± {self.se:.4f} (se), interval "
                f"[{self.diff - STAT_Z * self.se:+.4f}, {self.diff + STAT_Z * self.se:+.4f}] against margin "
                f"{self.margin:+.4f}: {self.verdict}")


def _side_text(name: str, values) -> str:
    """'fold 0.8700 ± 0.0006 (se, n = 3)': a side's seed mean and its standard error."""
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return f"{name} — (n = 0)"
    if len(v) == 1:
        return f"{name} {v.iloc[0]:.4f} (n = 1)"
    return f"{name} {v.mean():.4f} ± {v.std(ddof=1) / math.sqrt(len(v)):.4f} (se, n = {len(v)})"


def difference_of_means(a, b) -> tuple[float, float]:
    """d = mean(a) − mean(b) of two sets of seed values and its standard error
    se = √(s_a²/n_a + s_b²/n_b) (s: the seed-to-seed sd); each side needs ≥ 2 values."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(a.mean() - b.mean()), float(math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


def compare_means(name_a: str, values_a, name_b: str, values_b, margin: float, label: str = "") -> Comparison:
    """The rule of every comparison claim, which says mean(a) − mean(b) > `margin`: d = the
    difference of the seed means, se = √(s_a²/n_a + s_b²/n_b) (s: seed-to-seed sd). `reproduced`
    when the interval d ± STAT_Z·se lies above the margin, `not reproduced` when it lies below,
    `inconclusive` when it straddles or touches it; fewer than MIN_SEEDS seeds on a side:
    `inconclusive`, with the reason. NaN values (not measured) are left out: a diverged seed must be
    scored by the caller (DIVERGED_SCORE, chance) so that it counts."""
    a = [float(x) for x in pd.Series(values_a, dtype=float).dropna()]
    b = [float(x) for x in pd.Series(values_b, dtype=float).dropna()]
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        few = name_a if len(a) < MIN_SEEDS else name_b
        reason = f"{few} has {min(len(a), len(b))} seed(s) < {MIN_SEEDS}: no standard error"
        return Comparison(label, name_a, name_b, a, b, margin, INCONCLUSIVE, reason=reason)
    diff, se = difference_of_means(a, b)
    low, high = diff - STAT_Z * se, diff + STAT_Z * se
    verdict = REPRODUCED if low > margin else NOT_REPRODUCED if high < margin else INCONCLUSIVE
    return Comparison(label, name_a, name_b, a, b, margin, verdict, diff, se)


def combine(comparisons: list[Comparison]) -> str:
    """A claim made of several comparisons (every family, every depth, every pair): `not
    reproduced` if one is, `reproduced` if all are, else `inconclusive`."""
    verdicts = {c.verdict for c in comparisons}
    if not verdicts:
        return INCONCLUSIVE
    return NOT_REPRODUCED if NOT_REPRODUCED in verdicts else REPRODUCED if verdicts == {REPRODUCED} else INCONCLUSIVE


@dataclass
class Verdict:
    claim: str
    source: str
    statement: str
    quote: str
    numbers: str
    tolerance: str
    rule: str
    n: str
    means: str
    margin: str
    fragility: str
    tolerance_provenance: str
    verdict: str

    decisive: bool = field(default=False, repr=False)  # a finding that holds at any epoch (a collapse)

    def as_row(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "decisive"}


@dataclass(frozen=True)
class Claim:
    """One claim in one place: where it is stated (`source`, `statement`, and `quote`: the source
    sentence it encodes, verbatim), the `statistic` its judge computes, the `thresholds` it reads
    (names of module constants of orthojac.claims; the fragility moves them), the tidy tables its
    judge `reads` (by name: runs, metrics, spectra, layers, h4, hlav_rnn, hlav_lstm, hlav_linear;
    see TABLE_ARGUMENTS), its `judge` (runs, metrics, spectra, **the other tables it reads) →
    Verdict, the `provenance` of each threshold ((threshold, "stated" or "choice", where / why),
    each), whether compare_means decides it (`comparison`), whether its verdict must be `settled`
    (the same when judged at the runs' previous epoch: judge_settled), the report `page` that shows
    it (a key of orthojac.workflow.PAGES: paper, hlav, theory) and the `figure` that decides it
    (shown first in its part of that page, "" for none). Registered in orthojac.claims.CLAIMS, it
    is judged by the ledger and shown on its page: nothing else lists it."""
    id: str
    source: str
    statement: str
    quote: str
    statistic: str
    thresholds: tuple[str, ...]
    reads: tuple[str, ...]
    judge: Callable[..., Verdict] = field(compare=False, repr=False)
    provenance: list[tuple[str, str, str]] = field(default_factory=list, compare=False, repr=False)
    comparison: bool = False
    settled: bool = False
    page: str = field(kw_only=True)
    figure: str = field(default="", kw_only=True)

    @property
    def tolerance_provenance(self) -> str:
        """The ledger's `tolerance_provenance`: 'threshold: stated|choice: where / why; …' ('—' if none)."""
        return "; ".join(f"{what}: {kind}: {why}" for what, kind, why in self.provenance) or "—"

    def arguments(self, tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame | None]:
        """The keyword arguments its judge gets besides runs, metrics and spectra: each table it
        reads (TABLE_ARGUMENTS), None where `tables` lacks it. A table name orthojac does not make
        is an error naming the claim."""
        unknown = [t for t in self.reads if t not in POSITIONAL_TABLES and t not in TABLE_ARGUMENTS]
        if unknown:
            raise KeyError(f"claim {self.id} reads {', '.join(unknown)}: not a table of the ledger "
                           f"({', '.join(POSITIONAL_TABLES + tuple(TABLE_ARGUMENTS))})")
        return {TABLE_ARGUMENTS[t]: tables.get(t) for t in self.reads if t in TABLE_ARGUMENTS}


# The tidy tables a judge reads (Claim.reads), by the name of their CSV in results/tables/: runs,
# metrics and spectra go to every judge (positionally; an absent one is an empty table), each other
# one to the judges that read it, as this keyword argument (every other table the workflow makes).
POSITIONAL_TABLES = ("runs", "metrics", "spectra")
TABLE_ARGUMENTS = {"layers": "layers", "init_study": "init_study", "screens": "screens", "diagnostics": "diagnostics",
                   "h4": "h4", "hlav_rnn": "hlav", "hlav_lstm": "hlav_lstm", "hlav_linear": "hlav_linear",
                   "hlav_deep": "hlav_deep"}

# The registry: claim id → Claim, in the ledger's order. orthojac.claims fills it; a judge's
# Verdict reads its claim's source, quote and provenance here.
CLAIMS: dict[str, Claim] = {}


COMPARISON_RULE = (f"difference of seed means ± {STAT_Z:g} se against the margin: reproduced when the interval "
                   "lies beyond it in the claimed direction, not reproduced when on the other side, inconclusive "
                   f"when it straddles; < {MIN_SEEDS} seeds a side: inconclusive")


THRESHOLD_RULE = "thresholds on the statistic (see tolerance)"


def _verdict(claim: str, numbers: str, tolerance: str, verdict: str,
             comparisons: list[Comparison] | None = None) -> Verdict:
    c = CLAIMS[claim]
    rule = COMPARISON_RULE if c.comparison else THRESHOLD_RULE
    n = means = margin = "—"
    if comparisons:
        def each(f):
            return "; ".join(f"{x.label + ': ' if x.label else ''}{f(x)}" for x in comparisons)
        n, means = each(lambda x: x.n), each(lambda x: x.means)
        margin = each(lambda x: f"{x.name_a} − {x.name_b} > {x.margin:+g}")
        numbers = f"{numbers}; rule: " + "; ".join(x.text for x in comparisons)
    return Verdict(claim, c.source, c.statement, c.quote, numbers, tolerance, rule, n, means, margin, "—",
                   c.tolerance_provenance, verdict)


def spread(values, digits: int = 3) -> str:
    """'0.853 ± 0.012 (sd, n = 3)': mean ± sample standard deviation over the values (NaN kept
    out), and how many; one value: '0.853 (n = 1)'."""
    v = pd.Series(values, dtype=float).dropna()
    if v.empty:
        return "— (n = 0)"
    if len(v) == 1:
        return f"{v.iloc[0]:.{digits}f} (n = 1)"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f} (sd, n = {len(v)})"


def previous_epoch(metrics: pd.DataFrame) -> pd.DataFrame:
    """`metrics` without each run's evaluations of its last epoch: the runs as they stood one epoch
    earlier (a run evaluated only at epoch 0 keeps it)."""
    if metrics.empty or "epoch" not in metrics:
        return metrics
    last = metrics.groupby(["experiment", "run"])["epoch"].transform("max")
    return metrics[(metrics["epoch"] < last) | (last == 0)]


def judge_settled(claim: str, runs, metrics, spectra, **tables) -> Verdict:
    """The claim's verdict; for a `settled` claim also judged at the runs' previous epoch (the
    ranking it reads must be the same at the last two epochs: "long enough to judge"). A verdict
    that differs there becomes inconclusive, and the numbers say so either way."""
    judge = CLAIMS[claim].judge
    verdict = judge(runs, metrics, spectra, **tables)
    if not CLAIMS[claim].settled or verdict.decisive:
        return verdict
    earlier = judge(runs, previous_epoch(metrics), spectra, **tables)
    seen = f"at the previous epoch: {earlier.verdict}" + (f" ({earlier.means})" if earlier.means != "—" else "")
    if earlier.verdict == verdict.verdict:
        verdict.numbers += f"; settled: the same verdict one epoch earlier ({seen})"
    elif verdict.verdict != INCONCLUSIVE:
        verdict.numbers += f"; not settled, {seen}: the runs are too short to judge"
        verdict.verdict = INCONCLUSIVE
    else:
        verdict.numbers += f"; {seen}"
    return verdict


def _threshold_modules() -> list[dict]:
    """The namespaces of orthojac.claims and its modules: a threshold is read as a global of the
    module its judge is in (and re-exported by the package)."""
    package = sys.modules[__name__.rpartition(".")[0]]
    names = [m for m in sys.modules if m == package.__name__ or m.startswith(package.__name__ + ".")]
    return [vars(sys.modules[m]) for m in sorted(names)]


def threshold_value(name: str) -> float:
    """The current value of threshold `name` (a number constant of orthojac.claims)."""
    for namespace in _threshold_modules():
        if isinstance(namespace.get(name), (int, float)) and not isinstance(namespace.get(name), bool):
            return namespace[name]
    raise KeyError(f"not a threshold of orthojac.claims: {name}")


@contextlib.contextmanager
def thresholds(**values: float):
    """Judge with some of orthojac.claims' threshold constants set to `values` (by name), in every
    module of the package that holds the name, restored on exit: what the fragility moves. An
    unknown name is an error."""
    unknown = []
    for k in values:
        try:
            threshold_value(k)
        except KeyError:
            unknown.append(k)
    if unknown:
        raise KeyError(f"not a threshold of orthojac.claims: {', '.join(unknown)}")
    holders = [(namespace, k) for namespace in _threshold_modules() for k in values if k in namespace]
    saved = [(namespace, k, namespace[k]) for namespace, k in holders]
    for namespace, k in holders:
        namespace[k] = values[k]
    try:
        yield
    finally:
        for namespace, k, value in saved:
            namespace[k] = value


def fragility(claim: str, judge_once: Callable[[], Verdict], factors=FRAGILITY_FACTORS) -> tuple[str, list[dict]]:
    """The verdict of `claim` again with each of its thresholds (CLAIMS[claim].thresholds) moved
    by each factor (×0.5, ×1.5: ±50 %), one at a time: 'reproduced at k of n settings' (n = 1 +
    settings moved; a threshold at 0 cannot be moved by a factor and is named) and which settings
    change the verdict. Also returns the settings as rows (threshold, factor, value, verdict)."""
    base = judge_once().verdict
    rows = [{"threshold": "—", "factor": 1.0, "value": float("nan"), "verdict": base}]
    fixed = []
    for name in CLAIMS[claim].thresholds:
        value = threshold_value(name)
        if value == 0:
            fixed.append(name)
            continue
        for factor in factors:
            with thresholds(**{name: value * factor}):
                rows.append({"threshold": name, "factor": factor, "value": value * factor,
                             "verdict": judge_once().verdict})
    k = sum(r["verdict"] == REPRODUCED for r in rows)
    changed = [f"{r['threshold']} ×{r['factor']:g} ({r['value']:g}) → {r['verdict']}" for r in rows[1:]
               if r["verdict"] != base]
    text = f"reproduced at {k} of {len(rows)} settings (each threshold ×{', ×'.join(f'{f:g}' for f in factors)})"
    text += "; changes: " + ", ".join(changed) if changed else "; no setting changes the verdict"
    if fixed:
        text += f"; not moved (0): {', '.join(fixed)}"
    return text, rows

"""The claims ledger read back for a reader: each claim's statistic against its threshold on one
common scale, its key number in a line, and its fragility as (k, n). Read from the ledger table
(ledger.csv, orthojac.claims.ledger), as every figure is made from a table.

The common scale is the *normalised margin*: how far the statistic lies from its threshold, in
units of what the rule allows, positive on the side the claim states, 0 at the threshold:

- a comparison (compare_means: "a − b = d ± se (se), interval [lo, hi] against margin m"):
  (d − m) / (z·se), its interval (lo − m, hi − m) / (z·se), i.e. ±1 around it: reproduced when
  the whole interval lies above 0;
- a statistic judged as a fraction r of its tolerance ("0.047 of the tolerance", "0.59 of the
  allowed"): 1 − r;
- a statistic s against a threshold t (P3, P5, P7, H-C3, H-C5): (s − t)/|t| when the claim says
  s ≥ t, (t − s)/|t| when it says s ≤ t; where the ledger gives a seed sd, the interval is ± 2 sd/|t|.

A claim whose numbers hold no statistic (data unavailable, not run) has no point and says why.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from .. import claims as C

NUM = r"[+\-−]?(?:\d+(?:\.\d*)?(?:e[+\-]?\d+)?|inf)"
COMPARISON = re.compile(rf"(?:(?P<label>[^;:]+): )?(?P<a>[^;:]+?) − (?P<b>[^;:]+?) = (?P<d>{NUM}) ± (?P<se>{NUM}) "
                        rf"\(se\), interval \[(?P<lo>{NUM}), (?P<hi>{NUM})\] against margin (?P<m>{NUM}): (?P<v>[a-z ]+)")
OF_TOLERANCE = re.compile(rf"(?:^|; )(?P<label>[^;:()]+): [^;]*?\((?:L = \d+; )?(?P<r>{NUM}) of the (?:tolerance|allowed)\)")
FRAGILITY = re.compile(r"reproduced at (\d+) of (\d+) settings")
SD = re.compile(rf"(?P<mean>{NUM}) ± (?P<sd>{NUM}) \(sd, n = (?P<n>\d+)\)")


@dataclass
class Point:
    """One test of a claim on the common scale: `x` its normalised margin, (`low`, `high`) its
    seed spread (NaN: none), `label` what it is, `key` its statistic against its threshold."""
    label: str
    x: float
    low: float = math.nan
    high: float = math.nan
    key: str = ""


def _f(text: str) -> float:
    return float(text.replace("−", "-"))


def fragility_counts(text: str) -> tuple[int, int] | None:
    """(k, n) of 'reproduced at k of n settings', None when the ledger gives none."""
    m = FRAGILITY.search(str(text))
    return (int(m[1]), int(m[2])) if m else None


REPORTED_ONLY = ("mechanism",)  # comparisons a claim's numbers report beside its test, not judged (P2, P3)


def _comparisons(numbers: str) -> list[Point]:
    out = []
    for m in COMPARISON.finditer(numbers.partition("; rule: ")[2] or numbers):
        if m["label"] and m["label"].strip() in REPORTED_ONLY:
            continue
        d, se, lo, hi, margin = (_f(m[k]) for k in ("d", "se", "lo", "hi", "m"))
        half = C.STAT_Z * se
        label = (m["label"].strip() + ": " if m["label"] else "") + f"{m['a']} − {m['b']}"
        x = (d - margin) / half if half > 0 else math.copysign(math.inf, d - margin)
        low, high = ((lo - margin) / half, (hi - margin) / half) if half > 0 else (x, x)
        out.append(Point(label, x, low, high, f"{label} {d:+.3f} [{lo:+.3f}, {hi:+.3f}] vs > {margin:+g}"))
    return out


def _against(label: str, value: float, threshold: float, above: bool, sd: float = math.nan,
             key: str | None = None) -> Point:
    scale = abs(threshold) or 1.0
    x = ((value - threshold) if above else (threshold - value)) / scale
    if math.isnan(x):  # inf − inf: a statistic that is not reached on both sides
        x = math.inf
    low, high = (x - 2 * sd / scale, x + 2 * sd / scale) if not math.isnan(sd) else (math.nan, math.nan)
    sign = "≥" if above else "≤"
    return Point(label, x, low, high, key or f"{label} {value:.3g} vs {sign} {threshold:g}")


def _p3(numbers: str) -> list[Point]:
    sds = SD.findall(numbers)
    if len(sds) < 2:
        return []
    (pm, psd, pn), (bm, bsd, bn) = [(_f(a), _f(b), int(c)) for a, b, c in sds[:2]]
    sd = math.sqrt(psd ** 2 + bsd ** 2)
    return [_against("best − plain", bm - pm, C.P3_MARGIN, True, sd,
                     f"best − plain ReLU {bm - pm:+.3f} vs ≥ {C.P3_MARGIN:+g}")]


def _p5(numbers: str) -> list[Point]:
    """Each δ > 0's ε at initialisation against its bound (when no comparison with δ = 0 was made)."""
    return [_against(f"δ={m['d']} ε", _f(m["e"]), C.P5_EPS, False)
            for m in re.finditer(rf"δ=(?P<d>{NUM}): ε (?P<e>{NUM}) at init", numbers) if _f(m["d"]) > 0]


def _p7(numbers: str) -> list[Point]:
    out = []
    for m in re.finditer(rf"d=(?P<d>\d+): rate (?P<r>{NUM}) per layer", numbers):
        rate = _f(m["r"])
        if m["d"] == "0":
            out.append(_against("d=0 decay", rate, C.P7_DECAY, True))
        else:
            out.append(_against(f"d={m['d']} |rate|", abs(rate), C.P7_FLAT, False))
    return out


def _h_c3(numbers: str) -> list[Point]:
    out = []
    if m := re.search(rf"Glorot's is (?P<k>{NUM})× the largest", numbers):
        out.append(_against("κ(Glorot)/κ(orthogonal)", _f(m["k"]), C.H_C3_KAPPA_RATIO, True))
    if m := re.search(rf"worst \|mean σ − g\|/g = (?P<g>{NUM})", numbers):
        out.append(_against("|mean σ − g|/g", _f(m["g"]), C.H_C3_GAIN_TOL, False))
    return out


def _h_c5(numbers: str) -> list[Point]:
    out = []
    if m := re.search(rf"orthogonal max/min (?P<f>{NUM})", numbers):
        out.append(_against("orthogonal max/min", _f(m["f"]), C.H_C5_FLAT, False))
    if m := re.search(rf"Gaussian L=\d+/L=\d+ (?P<g>{NUM})", numbers):
        out.append(_against("Gaussian deepest/shallowest", _f(m["g"]), C.H_C5_GROWTH, True))
    return out


def _of_tolerance(numbers: str) -> list[Point]:
    out = []
    for m in OF_TOLERANCE.finditer(numbers):
        r, label = _f(m["r"]), m["label"].strip()
        out.append(Point(label, 1 - r, key=f"{label} {r:.2g} of the allowed"))
    return out


PARSERS = {"P3": _p3, "P5": _p5, "P7": _p7, "H-C3": _h_c3, "H-C5": _h_c5, "P1": _of_tolerance,
           "H-C6": _of_tolerance}


def claim_points(claim: str, numbers: str) -> list[Point]:
    """The tests of `claim` on the common scale, read from its ledger `numbers` (empty when they
    hold no statistic)."""
    numbers = str(numbers)
    points = _comparisons(numbers)
    if not points and claim in PARSERS:
        points = PARSERS[claim](numbers)
    return points


def overview_table(ledger: pd.DataFrame) -> pd.DataFrame:
    """One row per test of each claim of `ledger` (claim, verdict, label, x, low, high, key,
    k, n: the fragility), and one row with x = NaN and `why` for a claim with no statistic."""
    rows = []
    for _, r in ledger.iterrows():
        counts = fragility_counts(r.get("fragility", ""))
        k, n = counts if counts else (None, None)
        base = {"claim": r["claim"], "verdict": r["verdict"], "k": k, "n": n}
        points = claim_points(r["claim"], r["numbers"])
        if not points:
            why = no_statistic_reason(r["numbers"])
            rows.append({**base, "label": "", "x": math.nan, "low": math.nan, "high": math.nan,
                         "key": "", "why": why})
        for p in points:
            rows.append({**base, "label": p.label, "x": p.x, "low": p.low, "high": p.high, "key": p.key, "why": ""})
    return pd.DataFrame(rows)


def no_statistic_reason(numbers: str, limit: int = 90) -> str:
    """Why a claim's numbers hold no statistic: the reason in their closing parenthesis when they
    give one (a scale or data set the claim is not about), else their first clause."""
    numbers = str(numbers)
    first = numbers.split(";")[0]
    m = re.search(r"\(([^()]*)\)$", numbers)
    measured = "±" in first or "L=" in first  # the first clause is a number, the reason comes last
    why = m[1] if m and measured and not m[1].startswith(("sd,", "se,")) else first
    return why if len(why) <= limit else why[: limit - 1] + "…"


def key_number(claim: str, numbers: str, limit: int = 3) -> str:
    """The claim's statistic against its threshold in a line (at most `limit` tests; the worst
    first), or the first clause of its numbers when they hold no statistic."""
    points = sorted(claim_points(claim, numbers), key=lambda p: p.x)
    source = SOURCE_NUMBERS.get(claim, "")
    if not points:
        return str(numbers).split(";")[0] + source
    text = "; ".join(p.key for p in points[:limit])
    return text + (f"; … {len(points) - limit} more" if len(points) > limit else "") + source


# The source's own number beside ours, where it states one that orthojac does not judge against.
SOURCE_NUMBERS = {"P5": f" (source: ≈ {C.P5_ACCURACY:.0%}, its convolutional networks')"}

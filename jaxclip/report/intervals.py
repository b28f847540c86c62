"""The one text format of a number with its 95 % bootstrap interval: `63.76 [63.30, 64.21]`.

Intervals are stored in results.json as {"value": v, "ci_low": lo, "ci_high": hi, "n": n}
(fractions; n the number of resampled units; `jaxclip.analysis.bootstrap.Interval.as_dict`), in
a `<name>_ci` field beside `<name>`. Paired comparisons (`bootstrap.paired_comparisons`) are
said in words by `comparison_sentence`: the difference in points, its interval and whether the
Holm-adjusted McNemar p-value makes it distinguishable from noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def format_interval(
    value: float | None,
    ci_low: float | None,
    ci_high: float | None,
    scale: float = 100.0,
    digits: int = 2,
) -> str | None:
    """`value [ci_low, ci_high]`, each times `scale` (percent by default), `digits` decimals.

    None when `value` is None; the bare value when the interval is missing.
    """
    if value is None:
        return None
    if ci_low is None or ci_high is None:
        return f"{scale * value:.{digits}f}"
    return f"{scale * value:.{digits}f} [{scale * ci_low:.{digits}f}, {scale * ci_high:.{digits}f}]"


def format_ci(
    interval: Mapping[str, Any] | None,
    value: float | None = None,
    scale: float = 100.0,
    digits: int = 2,
) -> str | None:
    """`format_interval` of a stored {"value", "ci_low", "ci_high"} dict.

    `value` (the study's own field) is shown when given, else the dict's; with no dict, the bare
    `value` (or None).
    """
    if interval is None:
        return None if value is None else format_interval(value, None, None, scale, digits)
    v = interval["value"] if value is None else value
    return format_interval(v, interval["ci_low"], interval["ci_high"], scale, digits)


def format_p(p: float) -> str:
    """A p-value in two significant digits; `< 0.0001` below that."""
    return "< 0.0001" if p < 1e-4 else f"= {p:.2g}"


def format_difference(row: Mapping[str, Any], scale: float = 100.0, digits: int = 2) -> str:
    """`+0.31 [-0.12, 0.74]`: a stored paired difference and its interval, in points."""
    d, lo, hi = (scale * row[k] for k in ("difference", "ci_low", "ci_high"))
    return f"{d:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def comparison_sentence(
    row: Mapping[str, Any], label: str | None = None, scale: float = 100.0, digits: int = 2
) -> str:
    """One paired comparison in words, from its measured difference, interval and Holm p-value.

    `row` is a `bootstrap.paired_comparisons` entry; e.g. `τ 0.03 vs 0.02: +0.31 points
    [-0.12, 0.74], not distinguishable from noise (Holm p = 0.41)`.
    """
    label = label if label is not None else f"{row['a']} vs {row['b']}"
    verdict = "distinguishable" if row["distinguishable"] else "not distinguishable"
    d, lo, hi = (scale * row[k] for k in ("difference", "ci_low", "ci_high"))
    return (
        f"{label}: {d:+.{digits}f} points [{lo:+.{digits}f}, {hi:+.{digits}f}], {verdict} "
        f"from noise (Holm p {format_p(row['p_holm'])})"
    )

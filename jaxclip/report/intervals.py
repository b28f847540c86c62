"""The one text format of a number with its 95 % bootstrap interval: `63.76 [63.30, 64.21]`.

Intervals are stored in results.json as {"value": v, "ci_low": lo, "ci_high": hi} (fractions,
`jaxclip.analysis.bootstrap.Interval.as_dict`), in a `<name>_ci` field beside `<name>`.
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

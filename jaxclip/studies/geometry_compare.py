"""Geometry of two or more models side by side (`configs/geometry.py:siglip_vs_clip`).

The geometry study runs on each model on its own (`WORKDIR/<model>/`); this module reads their
results.json `geometry` entries and puts the headline numbers beside each other: the modality
gap, the thin shells (mean centred norm vs sqrt(tr C)), ‖m‖/‖σ‖, the loss under a mean shift
(the model's own loss: CLIP's softmax loss, or SigLIP's sigmoid loss on t·cos + b for a model
with a logit bias) and the conformity fit. For each model a sentence says whether the
double-ellipsoid picture of Levi & Gilboa (2025) holds, from three checks with fixed
thresholds (`CRITERIA`):

* offset shells: each modality's mean is far from the origin, ‖m‖/‖σ‖ ≥ 0.5 (paper, COCO
  ViT-B/32: 0.94 images, 1.03 texts);
* thin shells: |sqrt(tr C) − mean ‖v − m‖| / mean ‖v − m‖ ≤ 5 % for both modalities (paper:
  0.18 % on COCO images);
* the loss is lowest near the trained offset: the α of the minimal loss is within ±0.25 of 0
  for each shifted modality (paper, Property 6: near α = 0).

Pure: entries in, rows / sentences / markdown out; `write_comparison` writes the files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jaxclip import atomic
from jaxclip.report import Report

__all__ = [
    "CRITERIA",
    "comparison_rows",
    "render_comparison",
    "verdict",
    "verdict_sentence",
    "write_comparison",
]

# Thresholds of the double-ellipsoid checks (module docstring).
CRITERIA = {"min_offset_ratio": 0.5, "max_shell_rel_error": 0.05, "max_abs_alpha": 0.25}
SIDES = ("image", "text")


def _f(x: Any, fmt: str = ".4f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return format(float(x), fmt)


def loss_kind(entry: Mapping[str, Any]) -> str:
    """ "sigmoid" for a model with a logit bias (its loss entry says so), else "softmax"."""
    return "sigmoid" if entry.get("loss", {}).get("loss") == "sigmoid" else "softmax"


def _rows_of(entry: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(quantity, value) pairs of one model's geometry entry, in table order."""
    mo, sh, gap, lo, cf = (
        entry["moments"],
        entry["thin_shell"],
        entry["gap"],
        entry["loss"],
        entry["conformity"],
    )
    rows = [
        ("loss", loss_kind(entry)),
        ("logit scale t", _f(lo["logit_scale"], ".4g")),
        ("logit bias b", _f(lo.get("logit_bias"), ".4g") if "logit_bias" in lo else "none"),
        ("modality gap ‖m_i − m_t‖ (raw)", _f(gap["norm"])),
        ("modality gap of the normalised means", _f(gap["normalised_norm"])),
        ("cos(m_i, m_t)", _f(gap["cos_means"])),
    ]
    for side in SIDES:
        rows.append((f"‖m‖/‖σ‖, {side}s", _f(mo[side]["ratio"], ".3f")))
    for side in SIDES:
        s = sh[side]
        rows.append(
            (
                f"thin shell, {side}s: mean ‖v − m‖ vs sqrt(tr C) (rel. error)",
                f"{_f(s['mean_norm'])} vs {_f(s['sqrt_trace'])} "
                f"({_f(100 * s['rel_error'], '.2f')} %)",
            )
        )
    for side in SIDES:
        if side in lo:
            su = lo[side]["summary"]
            rows.append(
                (
                    f"α of minimal loss, {side}s shifted (loss at α = 0; minimum)",
                    f"{su['alpha_min_total']:+.2f} ({_f(su['total_at_0'])}; {_f(su['total_min'])})",
                )
            )
            if loss_kind(entry) == "sigmoid":
                split = f"{_f(su['positive_at_0'])} + {_f(su['negative_at_0'])}"
                rows.append((f"positive + negative at α = 0, {side}s shifted", split))
            else:
                split = f"{_f(su['alignment_at_0'])} + {_f(su['uniformity_at_0'])}"
                rows.append((f"alignment + uniformity at α = 0, {side}s shifted", split))
    for side in SIDES:
        fit = cf[side]["raw"]
        rows.append(
            (
                f"conformity fit to the raw mean, {side}s: a, b (Pearson)",
                f"{_f(fit['a'], '.3f')}, {_f(fit['b'], '.3f')} ({_f(fit['pearson'], '.4f')})",
            )
        )
    return rows


def comparison_rows(entries: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """One row per quantity, one column per model (the entries' keys, in order)."""
    per_model = {name: dict(_rows_of(e)) for name, e in entries.items()}
    quantities = list(dict.fromkeys(q for rows in per_model.values() for q in rows))
    return [
        {"quantity": q, **{name: rows.get(q, "—") for name, rows in per_model.items()}}
        for q in quantities
    ]


def verdict(entry: Mapping[str, Any]) -> tuple[bool, list[str], list[str]]:
    """(holds, the checks passed, the checks failed) of the double-ellipsoid picture, each
    check a phrase with its measured numbers and threshold (`CRITERIA`)."""
    mo, sh, lo = entry["moments"], entry["thin_shell"], entry["loss"]
    ok, bad = [], []
    ratios = [float(mo[s]["ratio"]) for s in SIDES]
    lim = CRITERIA["min_offset_ratio"]
    phrase = f"‖m‖/‖σ‖ = {ratios[0]:.3f} (images), {ratios[1]:.3f} (texts)"
    if min(ratios) >= lim:
        ok.append(f"both shells are offset from the origin ({phrase}, ≥ {lim})")
    else:
        bad.append(f"a shell is not offset from the origin ({phrase}, below {lim} for one)")
    errs = [abs(float(sh[s]["rel_error"])) for s in SIDES]
    lim = CRITERIA["max_shell_rel_error"]
    phrase = f"{100 * errs[0]:.2f} % (images), {100 * errs[1]:.2f} % (texts)"
    if max(errs) <= lim:
        ok.append(f"both are thin shells (sqrt(tr C) vs mean ‖v − m‖: {phrase}, ≤ {100 * lim:g} %)")
    else:
        bad.append(f"not both are thin shells ({phrase}, above {100 * lim:g} % for one)")
    lim = CRITERIA["max_abs_alpha"]
    for side in SIDES:
        if side not in lo:
            continue
        a = float(lo[side]["summary"]["alpha_min_total"])
        phrase = f"{side}s shifted: α = {a:+.2f}"
        if abs(a) <= lim:
            ok.append(f"the loss is lowest near the trained offset ({phrase}, within ±{lim:g})")
        else:
            bad.append(
                f"the loss is lowest away from the trained offset ({phrase}, beyond ±{lim:g})"
            )
    return not bad, ok, bad


def verdict_sentence(name: str, entry: Mapping[str, Any]) -> str:
    """'The double-ellipsoid picture holds / does not hold for the <loss> model `name`: ...'."""
    holds, ok, bad = verdict(entry)
    kind = loss_kind(entry)
    if holds:
        return (
            f"The double-ellipsoid picture holds for the {kind} model `{name}`: "
            + "; ".join(ok)
            + "."
        )
    also = f" (it does meet: {'; '.join(ok)})" if ok else ""
    return (
        f"The double-ellipsoid picture does not hold for the {kind} model `{name}`: "
        + "; ".join(bad)
        + also
        + "."
    )


def render_comparison(
    entries: Mapping[str, Mapping[str, Any]], *, dataset: str, split: str
) -> Report:
    """The comparison report: the side-by-side table and one verdict sentence per model."""
    names = list(entries)
    report = Report(f"Geometry: {' vs '.join(names)}")
    pairs = {name: e["pairs"]["n_pairs"] for name, e in entries.items()}
    report.text(
        f"The geometry study (double-ellipsoid analysis, Levi & Gilboa 2025) of each model on "
        f"the `{split}` split of `{dataset}` ("
        + ", ".join(f"`{n}`: {p} pairs" for n, p in pairs.items())
        + "), numbers side by side. Each model's loss under the mean shift v' = v − α·m is its "
        "own training loss: CLIP's softmax loss on t·cos, or SigLIP's sigmoid loss on t·cos + b "
        "(total = positive + negative part) for a model with a logit bias. Full reports: "
        + ", ".join(f"[{n}]({n}/report.md)" for n in names)
        + "."
    )
    report.table(comparison_rows(entries), caption="Geometry, model by model")
    report.text(
        " ".join(verdict_sentence(n, e) for n, e in entries.items())
        + f" (Checks: ‖m‖/‖σ‖ ≥ {CRITERIA['min_offset_ratio']} for both modalities, thin-shell "
        f"relative error ≤ {100 * CRITERIA['max_shell_rel_error']:g} %, α of minimal loss "
        f"within ±{CRITERIA['max_abs_alpha']:g} of 0.)"
    )
    return report


def write_comparison(
    workdir: str | Path, entries: Mapping[str, Mapping[str, Any]], *, dataset: str, split: str
) -> dict[str, Any]:
    """Writes `comparison.json` (rows and verdicts) and `report.md` into `workdir`; returns
    what comparison.json holds."""
    workdir = Path(workdir)
    record = {
        "models": list(entries),
        "rows": comparison_rows(entries),
        "verdicts": {
            name: {"holds": verdict(e)[0], "sentence": verdict_sentence(name, e)}
            for name, e in entries.items()
        },
        "criteria": dict(CRITERIA),
    }
    atomic.write_json(workdir / "comparison.json", record)
    render_comparison(entries, dataset=dataset, split=split).write(workdir)
    return record

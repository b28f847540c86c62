"""Helpers that several studies share: text embedding, template specs, checks, formatting.

Nothing here knows a particular study; a helper moves here when a second study needs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from jaxclip.config_args import ConfigError
from jaxclip.data.templates import DATASET_TEMPLATES, TEMPLATE_SETS
from jaxclip.report import Report, markdown_table


def embed_texts(ctx: Any, texts: Sequence[str]) -> np.ndarray:
    """`ctx.texts` of every distinct string once (one encoder call), rows in `texts` order."""
    texts = [str(t) for t in texts]
    uniq = list(dict.fromkeys(texts))
    emb = np.asarray(ctx.texts(uniq), np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(uniq):
        raise ValueError(f"ctx.texts returned shape {emb.shape} for {len(uniq)} texts")
    pos = {t: i for i, t in enumerate(uniq)}
    return emb[[pos[t] for t in texts]]


def check_template_spec(field: str, spec: Any) -> None:
    """A template spec is a TEMPLATE_SETS key, "dataset" or one literal template with "{}"."""
    if not isinstance(spec, str) or not (
        spec in TEMPLATE_SETS or spec == "dataset" or spec.count("{}") == 1
    ):
        raise ConfigError(
            f"config.{field}={spec!r} is not valid; choose one of: {', '.join(TEMPLATE_SETS)}, "
            "dataset, or a literal template with exactly one '{}'"
        )


def resolve_template_set(spec: str, dataset: str) -> tuple[str, tuple[str, ...], str]:
    """(name, templates, note) for a template spec: a TEMPLATE_SETS key, "dataset" or a literal.

    "dataset" is the set the CLIP paper used for the dataset (`DATASET_TEMPLATES`); for a
    CLIP_benchmark name ("cb/vtab/dtd") CLIP_benchmark's own templates for it (named after the
    dataset, `CBDataset.templates`); "photo" with a note where the dataset has none.
    """
    if spec == "dataset":
        base = dataset.split("/")[0]
        if base == "cb":
            from jaxclip.data.clip_benchmark import lookup

            entry = lookup(dataset)
            if entry.templates():
                return (
                    f"cb/{entry.name}",
                    entry.templates(),
                    f"CLIP_benchmark's templates for {entry.name}",
                )
            base = dataset
        if base in DATASET_TEMPLATES:
            name = DATASET_TEMPLATES[base]
            return name, TEMPLATE_SETS[name], f"the CLIP paper's set for {base}"
        return "photo", TEMPLATE_SETS["photo"], f"{base} has no set of its own; using photo"
    if spec in TEMPLATE_SETS:
        return spec, TEMPLATE_SETS[spec], ""
    if spec.count("{}") == 1:
        return "literal", (spec,), ""
    raise ConfigError(f"template spec {spec!r} is neither a TEMPLATE_SETS key nor a template")


def check_positive_tuple(
    field: str, values: Any, *, integer: bool = False, allow_zero: bool = False
) -> None:
    """A non-empty tuple of finite numbers > 0 (or >= 0), integers if asked; else one line."""
    vals = tuple(values) if isinstance(values, (tuple, list)) else (values,)
    ok = bool(vals) and all(
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and math.isfinite(float(v))
        and (float(v) >= 0 if allow_zero else float(v) > 0)
        and (not integer or float(v).is_integer())
        for v in vals
    )
    if not ok:
        kind = "integers" if integer else "numbers"
        sign = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"config.{field}={vals} must be a non-empty tuple of {kind} {sign}")


def attribute_value_names(ctx: Any, which: str) -> dict[str, tuple[str, ...]]:
    """Attribute -> names of its values, in the dataset's order ({} when it has none).

    Read from the source's info (the features' attribute dict order differs between a fresh
    extraction and a cache read, the dataset's does not).
    """
    info: Mapping[str, Any] = getattr(ctx.source(which).info, "attributes", None) or {}
    return {a: tuple(str(v) for v in values) for a, values in info.items()}


def metrics_protocol(ctx: Any) -> str:
    """The run's `metrics_protocol` ("jaxclip" when the config predates the field)."""
    return str(getattr(ctx.config, "metrics_protocol", "jaxclip"))


def pct(x: float | None) -> float | None:
    """A fraction in percent (None stays None)."""
    return None if x is None else 100.0 * float(x)


def overlap_note(seconds: Mapping[str, float], background: Sequence[str], beside: str) -> str:
    """The parts table's sentence on the `background` parts that ran on a second thread while
    `beside` ("the JAX probes fitted"); "" when none of them ran."""
    ran = [k for k in background if k in seconds]
    if not ran:
        return ""
    return (
        f"{', '.join(ran)} ran on a second thread while {beside}, so these parts overlap in "
        "time and add up to more than the study's wall time."
    )


def timing_note(report: Report, seconds: Mapping[str, float], note: str = "") -> None:
    """Wall time per part of a study, in the report only (results.json stays reproducible);
    `note`, a sentence shown above the table (e.g. which parts ran at the same time)."""
    logging.info(
        "%s: seconds per part %s", report.title, {k: round(v, 2) for k, v in seconds.items()}
    )
    report.text(
        "<details><summary>Wall time per part of this study (click to expand; JAX parts "
        "include compilation)</summary>\n\n"
        + (f"{note}\n\n" if note else "")
        + markdown_table([{"part": k, "seconds": v} for k, v in seconds.items()], floatfmt=".2f")
        + "\n</details>"
    )

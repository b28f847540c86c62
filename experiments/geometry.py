"""Geometry of the raw embedding space (Levi & Gilboa 2025): `python -m experiments.geometry
--config=configs/geometry.py:vit_b32,coco --workdir=runs/geometry`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiments.models import run_studies
from jaxclip import cli


def run(config: Any, workdir: str) -> dict:
    """The geometry study of `config.model`; with `config.compare_models` (the
    `configs/geometry.py:siglip_vs_clip` variant) of each of those models into WORKDIR/<model>/,
    then their side-by-side comparison (WORKDIR/report.md, comparison.json)."""
    models = tuple(config.get("compare_models", ()))
    if not models:
        return run_studies(config, workdir, ["geometry"])
    import ml_collections

    from jaxclip.config_args import ConfigError
    from jaxclip.studies import geometry_compare

    names = [str(m) for m in models]
    if len(set(names)) != len(names) or any("/" in m or m.startswith(".") for m in names):
        raise ConfigError(
            f"config.compare_models={names!r}: give distinct catalog names (no paths)"
        )
    entries = {}
    for name in names:
        sub = ml_collections.ConfigDict(config.to_dict())
        sub.model, sub.compare_models = name, ()
        entry = run_studies(sub, str(Path(workdir) / name), ["geometry"])["geometry"]
        if "skipped" in entry:
            raise ConfigError(f"geometry of {name!r} was skipped: {entry['skipped']}")
        entries[name] = entry
    split = entries[names[0]]["pairs"]["split"]
    return geometry_compare.write_comparison(workdir, entries, dataset=config.dataset, split=split)


if __name__ == "__main__":
    cli.main(run, "geometry")

"""report.md of the extraction job (`jaxclip.features.job`): what was extracted, where it is
cached, how fast, and what was skipped."""

from __future__ import annotations

from typing import Any

from jaxclip.report.markdown import Report

MAX_SKIPPED_IN_REPORT = 50


def build_report(results: dict[str, Any], timings: dict[str, Any]) -> Report:
    """report.md: what was extracted, where it is cached, how fast, and what was skipped."""
    cfg, model, devices = results["config"], results["model"], timings["devices"]
    report = Report(f"Feature extraction: {cfg['model']} on {cfg['dataset']}")
    report.text(
        f"Model `{cfg['model']}` ({model['name']}, embedding size {model['embed_dim']}, "
        f"params sha256 `{model['params_sha256'][:16]}`), dataset `{results['dataset']['name']}` "
        f"(version {results['dataset']['version']}), preprocessing `{cfg['preprocess']}`, "
        f"dtype {cfg['dtype']}, global batch {cfg['batch_size']} (rounded up to a multiple of "
        "the device count)"
        + (
            f", a seeded subset of {cfg['max_examples']} examples per split"
            if cfg["max_examples"]
            else ""
        )
        + f". Ran on {devices['device_count']} {devices['platform']} device(s) in "
        f"{devices['process_count']} process(es)."
    )
    report.section("Image embeddings")
    rows = []
    for role, s in results["splits"].items():
        tp = timings["throughput"][role]
        rows.append(
            {
                "role": role,
                "split": s["split"],
                "examples": s["num_examples"],
                "captions": s["num_captions"],
                "skipped": s["num_skipped"],
                "encoded now": tp["encoded"],
                "images/s": tp["images_per_s"],
                "cache": s["cache"],
            }
        )
    report.table(rows, floatfmt=".1f")
    report.text(
        "`images/s` is end to end for the rows encoded by this run: decoding, preprocessing, "
        "encoding and cache writes, with the one-off compilation included (so small runs "
        "understate it); it is empty where every row was read from the cache. Embeddings are raw (not "
        "normalised), float32, in dataset order; labels, indices, attributes and captions are "
        "stored beside them."
    )
    if results["texts"]:
        report.section("Text embeddings")
        report.table(
            [
                {"set": k, "texts": v["num_texts"], "what": v["source"], "cache": v["cache"]}
                for k, v in results["texts"].items()
            ]
        )
    report.section("Skipped files")
    skipped = [(role, f) for role, s in results["splits"].items() for f in s["skipped"]]
    if not skipped:
        report.text("None: every image decoded.")
    else:
        report.text(
            f"{len(skipped)} file(s) did not decode and were left out (indices count the kept "
            "files only):"
        )
        lines = [f"- `{f['path']}` ({role}): {f['reason']}" for role, f in skipped]
        if len(lines) > MAX_SKIPPED_IN_REPORT:
            more = len(lines) - MAX_SKIPPED_IN_REPORT
            lines = [*lines[:MAX_SKIPPED_IN_REPORT], f"- ... and {more} more (results.json)"]
        report.text("\n".join(lines))
    report.section("Reading the cache")
    report.text(
        "The `cache` columns name each entry's folder under the feature cache root "
        "(`config.cache_dir`, else `$JAXCLIP_CACHE`, else `~/.cache/jaxclip/features`). "
        "Re-running this config, or any study with the same model, dataset, split, "
        "preprocessing, dtype and batch size, reads these folders instead of encoding "
        "(`jaxclip.features.extract.extract_images(model, source, batch_size=..., "
        "preprocess=..., cache_root=...)` returns them as `ImageFeatures`). Each shard is an "
        "`.npz` checked against its SHA-256 on read."
    )
    return report

"""The extraction job behind `python -m experiments.extract`: config in, cache and files out.

Embeds every example of the configured splits (`config.splits`: roles "train" / "test", i.e.
`config.train_split` / `config.test_split`) with the configured model, and optionally the text
sets named in `config.texts`, into the feature cache (`jaxclip.features.cache`). The studies
read the same cache entries, so running this first (e.g. once on a GPU box or a cluster) makes
every later study on this model × dataset a file read. Writes `results.json` (examples per
split, embedding size, cache folders, skipped undecodable images; deterministic), `metrics.csv`,
`timings.json` (throughput) and `report.md` (`jaxclip.report.extraction`).

Multi-host (SLURM, Open MPI, Cloud TPU pods): run the same command on every host with
`--config.distributed=True`; `jax.distributed.initialize()` then finds its peers, every process
feeds its slice of each global batch, and process 0 writes the cache and the workdir.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jaxclip import atomic
from jaxclip.config_args import ConfigError, parse_list
from jaxclip.report import write_results
from jaxclip.report.extraction import build_report
from jaxclip.studies.common import check_common

# config.splits: roles; "train" is config.train_split, "test" is config.test_split.
SPLIT_ROLES = ("train", "test")
# config.texts: these, the names of jaxclip.data.templates.TEMPLATE_SETS (each filled with the
# dataset's class names) and of jaxclip.data.prompts.PROMPT_SETS (used as they are).
SPECIAL_TEXTS = {
    "classes": "the dataset's class prompts: its CLIP-paper templates (or 'a photo of a {}.')",
    "captions": "the captions of every extracted split (captioned datasets only)",
}


def text_set_names() -> list[str]:
    """Every valid entry of `config.texts`."""
    from jaxclip.data.prompts import PROMPT_SETS
    from jaxclip.data.templates import TEMPLATE_SETS

    return [*SPECIAL_TEXTS, *TEMPLATE_SETS, *PROMPT_SETS]


def check_config(config: Any) -> tuple[list[str], list[str]]:
    """Validates the config (common fields and this entry point's); returns (roles, texts)."""
    check_common(config)
    roles = parse_list("splits", config.splits, list(SPLIT_ROLES))
    if not roles:
        raise ConfigError(
            f"config.splits={config.splits!r} names no split; choose from: {', '.join(SPLIT_ROLES)}"
        )
    texts = parse_list("texts", config.texts, text_set_names())
    if config.shard_batches < 1:
        raise ConfigError(f"config.shard_batches={config.shard_batches} must be >= 1")
    if config.num_workers < -1:
        raise ConfigError(
            f"config.num_workers={config.num_workers} is not valid; -1 (one per core), 0 (decode "
            "in the main thread) or a positive number of threads"
        )
    if config.distributed:
        explicit = [
            bool(config.coordinator_address),
            config.num_processes > 0,
            config.process_id >= 0,
        ]
        if any(explicit) and not all(explicit):
            raise ConfigError(
                "config.coordinator_address, config.num_processes and config.process_id must be "
                f"given together or not at all (got {config.coordinator_address!r}, "
                f"{config.num_processes}, {config.process_id}); leave all three unset on SLURM, "
                "Open MPI and TPU pods"
            )
    return roles, texts


def check_writable_dirs(config: Any, workdir: str | Path) -> None:
    """Checks that the workdir and the feature cache can be written, before any work (a
    read-only or full disk otherwise fails only after the whole extraction)."""
    from jaxclip.features.cache import default_root

    atomic.check_writable(workdir, "--workdir")
    atomic.check_writable(config.cache_dir or default_root(), "config.cache_dir (feature cache)")


def initialize_distributed(config: Any) -> None:
    """`jax.distributed.initialize` from the config (no-op unless config.distributed)."""
    if not config.distributed:
        return
    import jax

    if config.coordinator_address:
        jax.distributed.initialize(
            coordinator_address=config.coordinator_address,
            num_processes=config.num_processes,
            process_id=config.process_id,
        )
    else:
        jax.distributed.initialize()


def text_set(name: str, dataset: str, classnames: tuple[str, ...]) -> tuple[list[str], str]:
    """The texts of set `name` (not "captions") for a dataset, and a one-line description."""
    from jaxclip.data.prompts import PROMPT_SETS
    from jaxclip.data.templates import DATASET_TEMPLATES, TEMPLATE_SETS, fill

    if name in PROMPT_SETS:
        return list(PROMPT_SETS[name]), f"prompt set {name} ({len(PROMPT_SETS[name])} prompts)"
    template_set = (
        DATASET_TEMPLATES.get(dataset.split("/")[0], "photo") if name == "classes" else name
    )
    templates = TEMPLATE_SETS[template_set]
    if not classnames:
        raise ConfigError(
            f"config.texts names {name!r}, which fills templates with class names, but dataset "
            f"{dataset!r} has none; choose a prompt set or 'captions'"
        )
    # Class-major order: row c * T + t is template t of class c.
    texts = [fill(t, c) for c in classnames for t in templates]
    return texts, f"{len(classnames)} classes x {len(templates)} templates ({template_set})"


def run(config: Any, workdir: str | Path) -> dict[str, Any]:
    """Extracts and caches the configured splits and text sets; writes the workdir files."""
    roles, text_names = check_config(config)
    initialize_distributed(config)
    import jax

    if jax.process_index() == 0:  # the one writer
        check_writable_dirs(config, workdir)

    from jaxclip.data.datasets import load_dataset
    from jaxclip.data.subset import maybe_subset
    from jaxclip.models.catalog import open_model

    c = config
    workdir = Path(workdir)
    lead = jax.process_index() == 0
    t_start = time.perf_counter()
    timings: dict[str, Any] = {}

    # Open every split first: a bad split name or an unprepared dataset fails before any work.
    sources = {}
    for role in roles:
        split = c.train_split if role == "train" else c.test_split
        t = time.perf_counter()
        source = load_dataset(
            c.dataset,
            split,
            data_dir=c.data_dir or None,
            path=c.data_path or None,
            strict=bool(c.get("strict", False)),
            test_fraction=c.get("test_fraction", 0.2),
            seed=c.seed,
        )
        source = maybe_subset(source, c.max_examples, seed=c.seed)
        len(source)  # folders decode-check their files here (cached on disk afterwards)
        sources[role] = (split, source)
        timings[f"open_{role}_seconds"] = round(time.perf_counter() - t, 3)
    first_info = next(iter(sources.values()))[1].info
    if "captions" in text_names and not first_info.has_captions:
        raise ConfigError(
            f"config.texts names 'captions' but dataset {c.dataset!r} has no captions; "
            f"drop it or choose a captioned dataset (coco, shapes)"
        )
    # Build the prompt sets now too, so that a set the dataset cannot fill fails before work.
    planned = {
        name: text_set(name, c.dataset, first_info.classnames)
        for name in text_names
        if name != "captions"
    }

    t = time.perf_counter()
    model = open_model(c.model, dtype=c.dtype, cache_dir=c.cache_dir or None)
    timings["open_model_seconds"] = round(time.perf_counter() - t, 3)
    embed_dim = int(model.config.projection_dim)
    common = {
        "batch_size": c.batch_size,
        "dtype": c.dtype or None,
        "cache_root": c.cache_dir or None,
        "progress": bool(c.progress),
    }

    throughput: dict[str, Any] = {}
    splits, captions = _extract_splits(model, sources, c, common, throughput)
    text_results = _extract_text_sets(
        model, text_names, planned, splits, captions, c, common, throughput
    )

    results: dict[str, Any] = {
        "config": c.to_dict(),
        "model": {"name": model.name, "params_sha256": model.fingerprint, "embed_dim": embed_dim},
        "dataset": {
            "name": first_info.name,
            "version": first_info.version,
            "classnames": list(first_info.classnames),
            "has_captions": bool(first_info.has_captions),
        },
        "splits": splits,
        "texts": text_results,
        "num_skipped": sum(s["num_skipped"] for s in splits.values()),
    }
    timings["total_seconds"] = round(time.perf_counter() - t_start, 3)
    timings["throughput"] = throughput
    timings["devices"] = {
        "platform": jax.default_backend(),
        "device_count": jax.device_count(),
        "process_count": jax.process_count(),
    }
    if lead:  # one writer: on a cluster every process returns the same dict
        write_results(workdir, results)
        atomic.write_json(workdir / "timings.json", timings)
        build_report(results, timings).write(workdir)
    return results


def _extract_splits(
    model: Any,
    sources: dict[str, tuple[str, Any]],
    c: Any,
    common: dict[str, Any],
    throughput: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Image features of every split role: (results entry per role, captions per role)."""
    from jaxclip.features.extract import extract_images

    splits: dict[str, Any] = {}
    captions: dict[str, list[str]] = {}
    for role, (split, source) in sources.items():
        t = time.perf_counter()
        feats = extract_images(
            model,
            source,
            preprocess=c.preprocess,
            shard_batches=c.shard_batches,
            num_workers=None if c.num_workers < 0 else c.num_workers,
            **common,
        )
        wall = time.perf_counter() - t
        info = source.info
        skipped = [{"path": p, "reason": r} for p, r in getattr(source, "skipped", [])]
        entry: dict[str, Any] = {
            "split": split,
            "num_examples": len(feats.embeds),
            "embed_dim": int(feats.embeds.shape[1]),
            "num_classes": len(feats.classnames),
            "labelled": bool((feats.labels >= 0).any()),
            "attributes": sorted(feats.attributes),
            "num_captions": 0,
            "cache": Path(feats.meta["cache"]).name,  # the entry under the cache root
            "dataset_fingerprint": info.fingerprint,
            "num_skipped": len(skipped),
            "skipped": skipped,
        }
        if feats.captions is not None:
            texts, _ = feats.caption_arrays()
            captions[role] = texts
            entry["num_captions"] = len(texts)
        splits[role] = entry
        encoded, seconds = int(feats.meta["encoded"]), float(feats.meta["encode_seconds"])
        throughput[role] = {
            "encoded": encoded,
            "encode_seconds": round(seconds, 3),
            "images_per_s": round(encoded / seconds, 2) if encoded and seconds > 0 else None,
            "wall_seconds": round(wall, 3),
        }

    return splits, captions


def _extract_text_sets(
    model: Any,
    text_names: list[str],
    planned: dict[str, tuple[list[str], str]],
    splits: dict[str, Any],
    captions: dict[str, list[str]],
    c: Any,
    common: dict[str, Any],
    throughput: dict[str, Any],
) -> dict[str, Any]:
    """Text embeddings of every named set (captions per split role): results entry per set."""
    from jaxclip.features.extract import extract_texts, text_store

    text_results: dict[str, Any] = {}
    for name in text_names:
        if name == "captions":
            sets = {
                f"captions/{r}": (caps, f"captions of split {splits[r]['split']}")
                for r, caps in captions.items()
            }
        else:
            sets = {name: planned[name]}
        for set_name, (texts, description) in sets.items():
            t = time.perf_counter()
            emb = extract_texts(model, texts, **common)
            throughput[set_name] = {
                "texts": len(texts),
                "seconds": round(time.perf_counter() - t, 3),
            }
            store = text_store(
                model,
                texts,
                batch_size=c.batch_size,
                dtype=c.dtype or None,
                cache_root=c.cache_dir or None,
            )
            text_results[set_name] = {
                "num_texts": len(texts),
                "embed_dim": int(emb.shape[1]),
                "source": description,
                "cache": store.path.name,
            }

    return text_results

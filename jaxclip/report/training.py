"""The results and report of a training run (`python -m experiments.train_clip`).

`write_run(config, result, workdir)` turns a `jaxclip.train.TrainResult` into results.json,
metrics.csv, report.md, training_curves.png and, when the run evaluated on held-out data during
training (`config.eval_every`), eval_curves.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxclip.report.markdown import Report
from jaxclip.report.plots import save_figure
from jaxclip.report.records import write_results

ATTRIBUTE_TITLES = {"shape": "shape", "color": "colour", "size": "size"}


def curves_figure(metrics: list[dict[str, Any]]):
    """Loss and in-batch accuracy (image->text, text->image) against the step."""
    from matplotlib.figure import Figure

    steps = [r["step"] for r in metrics]
    fig = Figure(figsize=(10, 3.6))
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(steps, [r["loss"] for r in metrics], color="C0")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("contrastive loss (train batch)")
    ax_loss.grid(alpha=0.3)
    ax_acc.plot(steps, [r["accuracy_i2t"] for r in metrics], label="image → text", color="C1")
    ax_acc.plot(steps, [r["accuracy_t2i"] for r in metrics], label="text → image", color="C2")
    ax_acc.set_xlabel("step")
    ax_acc.set_ylabel("in-batch accuracy (R@1)")
    ax_acc.set_ylim(0, 1)
    ax_acc.legend()
    ax_acc.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def eval_records(metrics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The metrics records that hold a held-out evaluation (`jaxclip.train.make_evaluator`)."""
    return [r for r in metrics if any(k.startswith("eval_zero_shot_") for k in r)]


def eval_curves_figure(metrics: list[dict[str, Any]]):
    """Held-out zero-shot accuracy per attribute and retrieval recall against the step; None
    when no record holds an evaluation."""
    from matplotlib.figure import Figure

    rows = eval_records(metrics)
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    attrs = [k.removeprefix("eval_zero_shot_") for k in rows[-1] if k.startswith("eval_zero_shot_")]
    fig = Figure(figsize=(10, 3.6))
    ax_zs, ax_r = fig.subplots(1, 2)
    for i, attr in enumerate(attrs):
        ax_zs.plot(
            steps,
            [r[f"eval_zero_shot_{attr}"] for r in rows],
            marker=".",
            color=f"C{i}",
            label=ATTRIBUTE_TITLES.get(attr, attr),
        )
    ax_zs.set_xlabel("step")
    ax_zs.set_ylabel("zero-shot accuracy (held-out)")
    ax_zs.set_ylim(0, 1)
    ax_zs.legend()
    ax_zs.grid(alpha=0.3)
    for k, style in ((1, "-"), (5, "--")):
        for d, name, color in (("i2t", "image → text", "C1"), ("t2i", "text → image", "C2")):
            key = f"eval_{d}_R@{k}"
            if key in rows[-1]:
                ax_r.plot(
                    steps,
                    [r[key] for r in rows],
                    style,
                    marker=".",
                    color=color,
                    label=f"{name} R@{k}",
                )
    ax_r.set_xlabel("step")
    ax_r.set_ylabel("retrieval recall (held-out)")
    ax_r.set_ylim(0, 1)
    ax_r.legend()
    ax_r.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def write_run(config: Any, result: Any, workdir: str | Path) -> dict[str, Any]:
    """Writes the files of a finished training run; returns the results dict.

    Args:
      config: the run's train_clip ConfigDict.
      result: what `jaxclip.train.train` returned.
      workdir: the run's folder.
    """
    workdir = Path(workdir)
    metrics = result.metrics
    last = metrics[-1] if metrics else {}
    cfg = result.config
    num_params = int(sum(np.size(x) for x in jax.tree.leaves(result.params)))
    zero_shot = result.zero_shot
    results: dict[str, Any] = {
        "config": config.to_dict(),
        "model": {
            "dir": str(result.model_dir),
            "image_size": cfg.vision.image_size,
            "patch_size": cfg.vision.patch_size,
            "vision": f"{cfg.vision.layers} x {cfg.vision.width} ({cfg.vision.heads} heads)",
            "text": f"{cfg.text.layers} x {cfg.text.width} ({cfg.text.heads} heads)",
            "projection_dim": cfg.projection_dim,
            "num_params": num_params,
        },
        "training": {
            "steps": result.num_steps,
            "resumed_from": result.start_step,
            "final_loss": last.get("loss"),
            "final_accuracy_i2t": last.get("accuracy_i2t"),
            "final_accuracy_t2i": last.get("accuracy_t2i"),
            "final_logit_scale": last.get("logit_scale"),
            "final_eval": {
                k.removeprefix("eval_"): v for k, v in last.items() if k.startswith("eval_")
            },
        },
        "zero_shot": zero_shot,
        "timing": result.timing,
    }
    write_results(workdir, results)

    report = Report(f"Training a small CLIP ({config.name}) on {config.dataset}")
    report.text(
        f"Contrastive training from scratch (symmetric InfoNCE over the global batch of "
        f"{config.batch_size} pairs, AdamW, warm-up + cosine, {result.num_steps} steps"
        + (f", resumed at step {result.start_step}" if result.start_step else "")
        + f"). Model: {cfg.vision.image_size} px images in {cfg.vision.patch_size} px patches, "
        f"image tower {results['model']['vision']}, text tower {results['model']['text']}, "
        f"D = {cfg.projection_dim}, {num_params / 1e6:.2f} M parameters "
        f"({cfg.text.vocab_size} x {cfg.text.width} of them the token table). "
        f"Saved to `{result.model_dir}` (open with `jaxclip.load`)."
    )
    report.section("Zero-shot attribute accuracy (test split)")
    report.text(
        "Prediction = the prompt with the highest cosine similarity to the image; chance = "
        "1 / number of values."
    )
    report.table(
        [
            {
                "attribute": ATTRIBUTE_TITLES.get(attr, attr),
                "prompt": r["prompt"],
                "classes": r["num_classes"],
                "accuracy %": 100 * r["accuracy"],
                "chance %": 100 * r["chance"],
            }
            for attr, r in zero_shot.items()
        ],
        floatfmt=".1f",
    )
    report.section("Training")
    report.table(
        [
            {
                "steps": result.num_steps,
                "final loss": last.get("loss"),
                "in-batch acc i→t": last.get("accuracy_i2t"),
                "in-batch acc t→i": last.get("accuracy_t2i"),
                "logit scale": last.get("logit_scale"),
                "steps/s": result.timing.get("steps_per_s"),
                "train s": result.timing.get("train"),
            }
        ],
        floatfmt=".3g",
        caption="Last logged step (train-batch averages over the last logging interval); "
        "steps/s and train s are of this invocation, after the first (compiling) step.",
    )
    if metrics:
        name = save_figure(curves_figure(metrics), workdir, "training_curves.png")
        report.figure(name, "Training loss and in-batch accuracy")
    evals = eval_records(metrics)
    if evals:
        n = config.get("eval_examples")
        report.section("Held-out evaluation during training")
        report.text(
            f"Every {config.get('eval_every')} steps and at the last, on the first {n} images of "
            f"the {config.test_split} split: zero-shot accuracy per attribute (the prompts "
            "above) and retrieval between each image and its first caption (R@K both ways)."
        )
        report.table(
            [
                {
                    "step": r["step"],
                    **{k.removeprefix("eval_"): v for k, v in r.items() if k.startswith("eval_")},
                }
                for r in evals
            ],
            floatfmt=".3f",
        )
        name = save_figure(eval_curves_figure(metrics), workdir, "eval_curves.png")
        report.figure(name, "Held-out zero-shot accuracy and retrieval recall during training")
    report.write(workdir)
    return results

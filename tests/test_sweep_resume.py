"""An interrupted sweep resumes: killed (SIGKILL) after its first cell, then rerun, it writes
the leaderboard and the model vs model comparisons of an uninterrupted sweep byte for byte."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from experiments import sweep as entry
from jaxclip import cli, sweep
from tests.test_sweep_pairs import _other_tiny_model

REPO = Path(__file__).resolve().parents[1]
# The smoke grid with the probes cut to the JAX logistic probe and the zero-shot attributes off.
LIGHT = [
    "--config=configs/sweep.py:smoke",
    "--config.probe.linear_svc=False",
    "--config.probe.sklearn_logistic=False",
    "--config.probe.save_probe=False",
    "--config.probe.max_iter=20",
    "--config.zero_shot.attributes=False",
]


def flags(data_dir, cache_dir, workdir, other_model):
    """Two models (so comparisons.csv has rows) on shapes/tiny: 4 cells, as the smoke grid."""
    return [
        *LIGHT,
        f"--config.models=tiny_random,{other_model}",
        "--config.datasets=shapes/tiny",
        f"--config.data_dir={data_dir}",
        f"--config.cache_dir={cache_dir}",
        f"--workdir={workdir}",
    ]


def sweep_process(args):
    return subprocess.Popen(
        [sys.executable, "-m", "experiments.sweep", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_killed_sweep_resumes_to_the_same_leaderboard(shapes_data_dir, tmp_path):
    other = _other_tiny_model(tmp_path / "tiny_noisy")
    # Uninterrupted, in-process.
    config, whole = cli.parse_args(
        "sweep", ["sweep", *flags(shapes_data_dir, tmp_path / "cache1", tmp_path / "whole", other)]
    )
    whole = Path(whole)
    assert entry.run(config, whole)["run"] == 4
    cells = sweep.check_names(config)
    # Interrupted: its own feature cache, killed once its first cell is written.
    args = flags(shapes_data_dir, tmp_path / "cache2", tmp_path / "cut", other)
    first, last = cells[0].results(tmp_path / "cut"), cells[-1].results(tmp_path / "cut")
    proc = sweep_process(args)
    deadline = time.monotonic() + 600
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.exists(), proc.communicate()[0] if proc.poll() is not None else "timed out"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not last.exists() and not (tmp_path / "cut" / "leaderboard.csv").exists()
    # Resumed: runs only the cells left.
    resumed = sweep_process(args)
    out = resumed.communicate(timeout=600)[0]
    assert resumed.returncode == 0, out
    done = sum(c.results(tmp_path / "cut").exists() for c in cells)
    assert done == 4 and "finished before" in out
    for name in ("leaderboard.csv", "comparisons.csv"):
        assert (tmp_path / "cut" / name).read_bytes() == (whole / name).read_bytes(), name
    # one pair per metric with per-example results: zero-shot top-1 and each probe's
    metrics = [r.split(",")[1] for r in (whole / "comparisons.csv").read_text().splitlines()[1:]]
    assert metrics == ["probe.jax_logistic.top1", "probe.svc_linear.top1", "zero_shot.top1"]

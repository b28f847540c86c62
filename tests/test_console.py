"""The console of a run: no config dump, no third-party noise, no escape codes off a terminal,
progress lines, the "At a glance" rows and the report's absolute path at the end; timings whose
rows add up to the total, with the first-use training as a row."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import shutil
import time
from pathlib import Path

import pytest

from configs.dissect import get_config
from configs.train_clip import get_config as train_config
from experiments import dissect, models
from jaxclip import cli, progress, train
from jaxclip.models import catalog
from jaxclip.studies import runner

ESCAPES = re.compile(r"\x1b|\r")  # ANSI escape sequences, carriage returns (bars redrawn)


def tiny_config(tmp_path: Path, data_dir: Path, studies: str):
    """The smoke dissect config on shapes/tiny, cut down to `studies` and to cheap probes."""
    c = get_config("smoke")
    c.studies = studies
    c.cache_dir = str(tmp_path / "cache")
    c.data_dir = str(data_dir)
    p = c.probe
    p.mlp = p.sklearn_logistic = p.attributes = p.save_probe = False
    p.l2_grid, p.max_iter, p.shots, p.shot_repeats = (1.0,), 10, (1,), 1
    return c


def table_rows(markdown: str, heading: str) -> list[list[str]]:
    """The cells of the first table after `heading` in a markdown document."""
    lines = markdown[markdown.index(heading) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


class Records(logging.Handler):
    """Every log record that reaches the root logger's handlers."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, tiny_model):
    """One tiny run through the entry point's code (`cli.run_and_report`), its console captured
    (stdout and stderr are not terminals): the tiny random model (the session's, already
    opened), "trained here" for the test (its training faked by a 0.3 s wait), on shapes/tiny
    generated during the run.

    Returns (tmp, results, stdout, stderr, log messages, wall seconds of `dissect.run` inside
    the call: what timings.json's total times, without the config write and the summary)."""
    tmp = tmp_path_factory.mktemp("console")
    records = Records()
    root = logging.getLogger()
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TQDM_DISABLE", raising=False)
        mp.setattr(progress, "PLAIN_EVERY_S", 0.2)
        mp.setattr(models, "TRAINED_HERE", {"tiny_random": lambda: train_config("smoke")})
        mp.setattr(train, "train_or_reuse", lambda config, cache_dir=None: time.sleep(0.3))
        mp.setattr(catalog, "open_model", lambda name, **kwargs: tiny_model)
        mp.chdir(tmp)  # a relative --workdir: the summary still names an absolute path
        config = tiny_config(tmp, tmp / "tfds", "zero_shot,probe")
        out, err = io.StringIO(), io.StringIO()
        old_level = root.level
        root.addHandler(records)
        root.setLevel(logging.INFO)
        try:
            spans = []

            def timed_run(config, workdir):
                t = time.perf_counter()
                try:
                    return dissect.run(config, workdir)
                finally:
                    spans.append(time.perf_counter() - t)

            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                results = cli.run_and_report(timed_run, "dissect", config, "run")
        finally:
            root.removeHandler(records)
            root.setLevel(old_level)
    return tmp, results, out.getvalue(), err.getvalue(), records.messages, spans[0]


def test_console_of_a_tiny_run(tiny_run):
    tmp, results, out, err, messages, _ = tiny_run
    both = out + err

    # The config is a file, not a dump on the console.
    saved = json.loads((tmp / "run" / "config.json").read_text())
    assert saved["studies"] == "zero_shot,probe" and saved["probe"]["l2_grid"] == [1.0]
    assert saved["data_dir"] == str(tmp / "tfds")
    assert out.splitlines()[0] == f"dissect: config in {tmp / 'run' / 'config.json'}"
    assert "batch_size" not in both and "l2_grid" not in both  # no YAML / dict of the config

    # Off a terminal: no escape codes, plain progress lines instead of bars.
    assert not ESCAPES.search(both), repr(ESCAPES.search(both))
    assert re.search(r"^zero_shot \[1/2\]: running, \d+ s", err, re.M), err
    assert re.search(r"^probe \[2/2\]: running, .* \(jax_logistic over 1 L2 values\)$", err, re.M)
    assert re.search(r"^probe \[2/2\]: done in (\d+ min \d\d|\d+) s$", err, re.M), err
    assert re.search(r"^encode shapes/tiny/test: 64/64 img \(100%\), .* \(done\)$", err, re.M)
    assert "training 'tiny_random' on first use" in err

    # Third-party noise: TFDS's download lines and dataset_info warnings are gone, ours says
    # what is generated.
    logs = "\n".join(messages)
    for noise in ("Downloading and preparing", "downloaded and prepared", "dataset_info.json"):
        assert noise not in both and noise not in logs, noise
    assert "generating shapes/tiny once (256 train / 128 test images)" in err

    # The end: the At-a-glance rows of the report, then the report's absolute path.
    lines = out.rstrip("\n").splitlines()
    report = (tmp / "run" / "report.md").resolve()
    assert lines[-1] == f"dissect: report {report}" and report.is_file()
    start = lines.index(next(line for line in lines if line.startswith("At a glance")))
    console_rows = [re.split(r"\s{2,}", line.strip()) for line in lines[start + 3 : -1]]
    report_rows = table_rows(report.read_text(), "## At a glance")
    assert [[c for c in r if c] for r in report_rows] == console_rows
    assert len(console_rows) == 1 + len(results["probe"]["headline"])  # zero-shot + each probe
    zs = results["zero_shot"]["headline"]
    ci = zs["top1_ci"]  # the headline's number with its bootstrap interval
    top1 = f"{100 * zs['top1']:.2f} [{100 * ci['ci_low']:.2f}, {100 * ci['ci_high']:.2f}]"
    assert console_rows[0][:3] == ["zero_shot", "zero-shot", top1]


def test_timings_add_up_and_show_the_training(tiny_run):
    """The faked first-use training is a row of timings.json and of the report's Timings, and
    the rows add up to the total, the run's own wall time."""
    tmp, _, _, _, _, wall = tiny_run
    timings = json.loads((tmp / "run" / "timings.json").read_text())
    assert timings["train_model"] >= 0.3
    steps = [k for k in timings if k not in ("parts", "total")]
    assert steps == [
        "train_model", "open_model", "zero_shot", "probe", "write_results", "report", "other"
    ]  # fmt: skip
    assert abs(sum(timings[k] for k in steps) - timings["total"]) <= 5e-4 * len(steps)
    assert timings["other"] >= -5e-4 * len(steps)
    assert wall - 1.0 <= timings["total"] <= wall  # the total is the run's own wall time
    table = table_rows((tmp / "run" / "report.md").read_text(), "## Timings")
    shown = {step: float(seconds) for step, seconds in table}
    assert list(shown) == [*steps, "total"]
    assert abs(sum(v for k, v in shown.items() if k != "total") - shown["total"]) <= 0.05 * len(
        steps
    )


def test_sections_drawn_beside_the_studies_equal_a_redraw(tiny_run, tmp_path):
    """The run drew each study's section on a second thread (timed in parts["report"], said in
    the Timings text); drawing the report again from the saved files alone gives the same
    report.md, figures included."""
    tmp = tiny_run[0]
    run = tmp / "run"
    timings = json.loads((run / "timings.json").read_text())
    drawn = timings["parts"]["report"]
    assert list(drawn) == ["zero_shot", "probe"] and all(v > 0 for v in drawn.values())
    report = (run / "report.md").read_text()
    assert f"were drawn on a second thread while the studies ran ({sum(drawn.values()):.1f} s" in (
        report
    )
    again = tmp_path / "again"
    shutil.copytree(run, again, ignore=shutil.ignore_patterns("*.png", "report.md"))
    runner.render_run(again)
    assert (again / "report.md").read_text() == report
    figures = sorted(p.name for p in run.glob("*.png"))
    assert figures and sorted(p.name for p in again.glob("*.png")) == figures


def test_no_training_row_when_the_model_is_already_trained(monkeypatch):
    calls = []
    monkeypatch.setattr(models, "TRAINED_HERE", {"tiny_random": lambda: train_config("smoke")})
    monkeypatch.setattr(train, "train_or_reuse", lambda config, cache_dir=None: calls.append(1))
    config = get_config("smoke")
    monkeypatch.setattr(train, "is_finished", lambda folder: True)
    assert models.ensure_trained(config) is None and calls == [1]  # reused (and recorded)
    monkeypatch.setattr(train, "is_finished", lambda folder: False)
    assert models.ensure_trained(config) >= 0.0 and calls == [1, 1]
    config.model = "vit_b32"  # not trained here: nothing to do
    assert models.ensure_trained(config) is None and calls == [1, 1]
    rows = runner.timing_rows({"open_model": 1.0, "zero_shot": 2.0, "total": 3.5})
    assert [r["step"] for r in rows] == ["open_model", "zero_shot", "other", "total"]


def test_backend_probe_lines_are_dropped_and_nothing_else(caplog):
    """The filters are targeted: JAX's "Unable to initialize backend" INFO line goes, an error
    of the same module and another message of it stay."""
    cli.quiet_third_party()
    logger = logging.getLogger("jax._src.xla_bridge")
    caplog.set_level(logging.INFO, logger="jax._src.xla_bridge")
    path = "/somewhere/jax/_src/xla_bridge.py"

    def emit(level: int, msg: str, pathname: str = path) -> None:
        logger.handle(logger.makeRecord(logger.name, level, pathname, 1, msg, (), None))

    emit(logging.INFO, "Unable to initialize backend 'tpu': INTERNAL: no TPU found")
    emit(logging.ERROR, "Unable to initialize backend 'cuda': broken")
    emit(logging.WARNING, "An NVIDIA GPU may be present on this machine")
    emit(logging.INFO, "Unable to initialize backend 'x'", "/elsewhere/other.py")
    assert [r.getMessage() for r in caplog.records] == [
        "Unable to initialize backend 'cuda': broken",
        "An NVIDIA GPU may be present on this machine",
        "Unable to initialize backend 'x'",
    ]


def test_plain_progress_off_a_terminal_and_tqdm_on_one(capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(progress, "PLAIN_EVERY_S", 0.0)
    assert list(progress.bar(range(3), desc="encode x", unit="img")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert err.splitlines()[0].startswith("encode x: 1/3 img (33%), 0 s, ")
    assert err.splitlines()[-1].startswith("encode x: 3/3 img (100%)")
    assert err.splitlines()[-1].endswith("(done)") and not ESCAPES.search(err)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    from tqdm import tqdm

    monkeypatch.setattr("sys.stderr", Terminal())
    bar = progress.bar(total=2, desc="t")
    assert isinstance(bar, tqdm)
    bar.close()
    monkeypatch.setenv("TQDM_DISABLE", "1")  # tqdm's own switch turns everything off
    assert not isinstance(progress.bar(total=2, desc="t"), tqdm)


def test_timing_rows_add_up_by_hand():
    rows = runner.timing_rows({"open_model": 1.25, "zero_shot": 2.5, "total": 4.0, "parts": {}})
    assert rows == [
        {"step": "open_model", "seconds": 1.25},
        {"step": "zero_shot", "seconds": 2.5},
        {"step": "other", "seconds": 0.25},
        {"step": "total", "seconds": 4.0},
    ]

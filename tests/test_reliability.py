"""Reliability: every user error is one line and exit code 2; the defects of the fault battery
(NaN in DONE.json, stale cache keys, symlink loops, late write checks, doubled work, silent
NaN weights, TFDS leftovers) stay fixed. docs/RELIABILITY.md maps each promise to its test."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        JAX_PLATFORMS="cpu",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TQDM_DISABLE="1",
        TF_CPP_MIN_LOG_LEVEL="3",
        JAXCLIP_CACHE=str(tmp / "jaxclip_cache"),
        JAXCLIP_DATA_DIR=str(tmp / "jaxclip_data"),
        PYTHONPATH=str(REPO),
    )
    return env


def _run(
    args: list[str], tmp: Path, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env={**_env(tmp), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _png(path: Path, value: int = 128) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(path)


# --- 1. a rerun of a finished (or nearly finished) training run --------------------------------


def _strict_json(path: Path):
    def reject(token):
        raise ValueError(f"{path} holds {token}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=reject)


def test_rerun_of_a_finished_or_nearly_finished_training_run(shapes_data_dir, tmp_path):
    from configs.train_clip import get_config
    from jaxclip import train

    c = get_config("smoke")
    c.data_dir = str(shapes_data_dir)
    c.progress = False
    c.checkpoint_every, c.keep_checkpoints = 1, 2  # bookkeeping: not part of the identity
    n = int(c.num_steps)
    wd = tmp_path / "run"
    train.train(c, wd, evaluate=False)
    # Killed after the final checkpoint, before DONE.json: the rerun runs 0 steps.
    (wd / train.DONE_FILE).unlink()
    again = train.train(c, wd, evaluate=False)
    assert again.start_step == n and again.timing["steps_per_s"] is None
    assert _strict_json(wd / train.DONE_FILE)["step"] == n
    # Killed with one step left (newest checkpoint n - 1): the rerun runs 1 step, which is
    # the compiling one, so again there is no rate to report.
    (wd / train.DONE_FILE).unlink()
    shutil.rmtree(wd / train.CHECKPOINT_DIR / str(n))
    last = train.train(c, wd, evaluate=False)
    assert last.start_step == n - 1 and last.num_steps == n
    assert last.timing["steps_per_s"] is None
    assert _strict_json(wd / train.DONE_FILE)["steps_run"] == 1
    assert train.is_finished(wd)


# --- 2. every feature key holds the model config, the platform and the device count ------------


def test_cache_key_holds_model_config_platform_and_device_count(
    tiny_model, shapes_data_dir, tmp_path
):
    from jaxclip.data.datasets import load_dataset
    from jaxclip.data.subset import maybe_subset
    from jaxclip.features.extract import extract_images, extract_texts, text_store
    from jaxclip.models.load import from_params

    source = maybe_subset(load_dataset("shapes/tiny", "test", data_dir=shapes_data_dir), 8)
    cfg = tiny_model.config
    act = "gelu" if cfg.vision.act != "gelu" else "quick_gelu"
    other = from_params(
        dataclasses.replace(
            cfg,
            vision=dataclasses.replace(cfg.vision, act=act),
            text=dataclasses.replace(cfg.text, act=act),
        ),
        jax.device_get(tiny_model.params),
        name=tiny_model.name,  # same name, same weights: only the architecture differs
    )
    assert other.fingerprint == tiny_model.fingerprint
    kw = {"cache_root": tmp_path, "batch_size": 8, "progress": False}
    first = extract_images(tiny_model, source, **kw)
    second = extract_images(other, source, **kw)
    assert second.meta["encoded"] == len(source), "the other activation reused stale features"
    assert second.meta["cache"] != first.meta["cache"]
    assert np.abs(second.embeds - first.embeds).max() > 1e-3
    meta = json.loads((Path(first.meta["cache"]) / "meta.json").read_text())
    assert meta["model_config"]["vision"]["act"] == cfg.vision.act
    assert (meta["platform"], meta["device_count"]) == ("cpu", jax.device_count())
    # Texts: the device count and the config are in the key.
    texts = ["a photo of a circle", "a red square"]
    one = text_store(tiny_model, texts, cache_root=tmp_path, devices=jax.devices()[:1])
    two = text_store(tiny_model, texts, cache_root=tmp_path, devices=jax.devices()[:2])
    assert one.path != two.path and one.fields["device_count"] == 1
    assert (
        text_store(other, texts, cache_root=tmp_path).path
        != text_store(tiny_model, texts, cache_root=tmp_path).path
    )
    a = extract_texts(tiny_model, texts, cache_root=tmp_path, progress=False)
    b = extract_texts(other, texts, cache_root=tmp_path, progress=False)
    assert np.abs(a - b).max() > 1e-3


# --- 3. symlink loops in image folders ----------------------------------------------------------


def test_symlink_loop_to_self_neither_duplicates(tmp_path):
    from jaxclip.data.datasets import load_dataset

    root = tmp_path / "folder"
    _png(root / "cat" / "a.png", 10)
    _png(root / "dog" / "b.png", 200)
    (root / "cat" / "loop").symlink_to(".")
    (root / "cat" / "dog_too").symlink_to("../dog")  # a link into another class folder
    src = load_dataset("image_folder", "all", path=root)
    assert len(src) == 2 and src.files == ["cat/a.png", "dog/b.png"]


def test_symlink_loop_to_the_parent_ends(tmp_path):
    root = tmp_path / "folder"
    _png(root / "cat" / "a.png", 10)
    _png(root / "dog" / "b.png", 200)
    (root / "cat" / "loop").symlink_to(".")
    (root / "cat" / "up").symlink_to("..")
    outside = tmp_path / "elsewhere"  # a link to a folder outside the root is still followed
    _png(outside / "c.png", 90)
    (root / "dog" / "more").symlink_to(outside)
    code = (
        "from jaxclip.data.datasets import load_dataset;"
        f"s = load_dataset('image_folder', 'all', path={str(root)!r});"
        "print(len(s), s.files)"
    )
    try:
        out = _run(["-c", code], tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("listing a folder with a `up -> ..` link did not end in 60 s")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "3 ['cat/a.png', 'dog/b.png', 'dog/more/c.png']"


# --- 4. the error contract: one line on stderr, exit code 2 -------------------------------------


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    """Folders for the battery: a model folder with nothing in it, image folders broken in
    every way the contract lists, an empty TFDS data dir."""
    t = tmp_path_factory.mktemp("bad")
    (t / "empty_model").mkdir()
    (t / "empty_tfds").mkdir()
    (t / "no_splits" / "cat").mkdir(parents=True)
    _png(t / "no_splits" / "cat" / "a.png")
    (t / "empty_split" / "test").mkdir(parents=True)
    (t / "empty_classes" / "test" / "cat").mkdir(parents=True)
    (t / "empty_classes" / "test" / "dog").mkdir(parents=True)
    for name in ("a.png", "b.jpg"):
        p = t / "undecodable" / "test" / "cat" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"not an image at all")
    _png(t / "not_imagenet" / "test" / "cat" / "a.png")
    _png(t / "one_bad" / "test" / "cat" / "good.png")
    (t / "one_bad" / "test" / "cat" / "bad.png").write_bytes(b"\x89PNG broken")
    return t


def _read_only(path: Path) -> bool:
    """Makes the existing folder `path` unwritable (immutable for root); False if impossible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        ok = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    else:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
        ok = True
    if ok:
        try:
            (path / "probe").write_bytes(b"x")
        except OSError:
            return True
        (path / "probe").unlink()
    return False


def _writable_again(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        path.chmod(stat.S_IRWXU)


EXTRACT = ["-m", "experiments.extract", "--config=configs/extract.py:smoke"]
TRAIN = ["-m", "experiments.train_clip", "--config=configs/train_clip.py:smoke"]


def _cases(b: Path, data_dir: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (arguments, substrings the one line must hold: the bad value, a valid choice)."""
    quick = ["--config.splits=test", "--config.texts=", f"--config.data_dir={data_dir}"]
    folder = ["--config.dataset=image_folder", "--config.splits=test", "--config.texts="]
    return {
        "unknown key": (
            [*EXTRACT, "--config.nonexistent=1"],
            ["nonexistent", "batch_size", "dataset"],
        ),
        "bad variant": (
            ["-m", "experiments.extract", "--config=configs/extract.py:nosuch"],
            ["nosuch", "vit_b32"],
        ),
        "bad dataset variant": (
            [*EXTRACT, *quick, "--config.dataset=shapes/nosuch"],
            ["nosuch", "tiny"],
        ),
        "batch_size=abc": ([*EXTRACT, "--config.batch_size=abc"], ["abc", "batch_size"]),
        "batch_size=0": ([*EXTRACT, "--config.batch_size=0"], ["batch_size=0", ">= 1"]),
        "unknown model": ([*EXTRACT, *quick, "--config.model=nosuch"], ["nosuch", "vit_b32"]),
        "offline hub id": (
            [*EXTRACT, *quick, "--config.model=nobody-here/no-such-clip"],
            ["nobody-here/no-such-clip", "offline"],
        ),
        "missing checkpoint file": (
            [*EXTRACT, *quick, f"--config.model={b}/missing.safetensors"],
            ["missing.safetensors"],
        ),
        "empty model folder": (
            [*EXTRACT, *quick, f"--config.model={b}/empty_model"],
            ["empty_model", "config.json"],
        ),
        "unknown dataset": ([*EXTRACT, *quick, "--config.dataset=nosuch"], ["nosuch", "cifar10"]),
        "dataset path escape": (
            [*EXTRACT, *quick, "--config.dataset=shapes/../../etc"],
            ["shapes/../../etc", ".."],
        ),
        "unprepared tfds": (
            [
                *EXTRACT,
                "--config.splits=test",
                "--config.texts=",
                "--config.dataset=cifar10",
                f"--config.data_dir={b}/empty_tfds",
            ],
            ["cifar10", "not prepared"],
        ),
        "bad split": ([*EXTRACT, *quick, "--config.test_split=nosuch"], ["nosuch", "train"]),
        "image_folder without data_path": ([*EXTRACT, *folder], ["image_folder", "data_path"]),
        "image_folder missing path": (
            [*EXTRACT, *folder, f"--config.data_path={b}/nope"],
            ["nope", "not a folder"],
        ),
        "image_folder without split folders": (
            [*EXTRACT, *folder, f"--config.data_path={b}/no_splits"],
            ["no_splits", "split 'test'", "is empty", "one"],
        ),
        "image_folder empty": (
            [*EXTRACT, *folder, f"--config.data_path={b}/empty_split"],
            ["empty_split", "no class subfolders"],
        ),
        "image_folder empty classes": (
            [*EXTRACT, *folder, f"--config.data_path={b}/empty_classes"],
            ["empty_classes", "no image files"],
        ),
        "image_folder undecodable": (
            [*EXTRACT, *folder, f"--config.data_path={b}/undecodable"],
            ["a.png", "decodes"],
        ),
        "image_folder strict": (
            [*EXTRACT, *folder, f"--config.data_path={b}/one_bad", "--config.strict=True"],
            ["bad.png", "strict"],
        ),
        "imagenet_folder that is not": (
            [
                *EXTRACT,
                "--config.dataset=imagenet_folder",
                "--config.splits=test",
                "--config.texts=",
                f"--config.data_path={b}/not_imagenet",
            ],
            ["cat", "WordNet"],
        ),
        "unknown text set": ([*EXTRACT, *quick, "--config.texts=nosuch"], ["nosuch", "classes"]),
        "train unknown key": ([*TRAIN, "--config.nonexistent=1"], ["nonexistent", "num_steps"]),
        "train bad variant": (
            ["-m", "experiments.train_clip", "--config=configs/train_clip.py:nosuch"],
            ["nosuch", "shapes128"],
        ),
        "train unknown dataset": ([*TRAIN, "--config.dataset=nosuch"], ["nosuch", "shapes"]),
        "train unprepared dataset": (
            [*TRAIN, "--config.dataset=cifar10", f"--config.data_dir={b}/empty_tfds"],
            ["cifar10", "not prepared"],
        ),
        "train width vs heads": (
            [*TRAIN, "--config.model.vision_width=65"],
            ["65", "heads"],
        ),
        "read-only workdir": ([*EXTRACT, *quick], ["ro_workdir", "not writable"]),
    }


# Cases also run as real `python -m` subprocesses (each pays the interpreter and import start-up):
# an early config error, the deep paths through TFDS, the hub / transformers and training.
REAL_SUBPROCESS_CASES = ("unknown key", "unprepared tfds", "offline hub id", "train width vs heads")


def _contract_failures(name: str, returncode: int, stderr: str, expected: list[str]) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    ok = returncode == 2 and len(lines) == 1 and all(e in lines[0] for e in expected)
    return [] if ok else [f"{name}: rc={returncode} stderr={stderr[-1500:]!r}"]


def test_every_user_error_is_one_line_and_exit_code_2(bad_inputs, shapes_data_dir, tmp_path):
    """Every case runs its entry point's real `__main__` in a child forked from one driver
    process (tests/entry_driver.py: the imports are paid once); REAL_SUBPROCESS_CASES also run
    as plain subprocesses and must print the same line with the same exit code."""
    cases = _cases(bad_inputs, shapes_data_dir)
    ro = tmp_path / "ro_workdir"
    if not _read_only(ro):
        _writable_again(ro)
        cases.pop("read-only workdir")
    cache = tmp_path / "cache"

    def argv(name, args, runs):
        workdir = ro if name == "read-only workdir" else runs / name.replace(" ", "_")
        extra = [f"--workdir={workdir}"]
        if "experiments.extract" in args:
            extra.append(f"--config.cache_dir={cache}")
        assert args[0] == "-m"
        return [*args, *extra]

    driver_cases = [
        {"name": name, "module": a[1], "args": a[2:]}
        for name, (args, _) in cases.items()
        for a in [argv(name, args, tmp_path / "runs")]
    ]
    (tmp_path / "cases.json").write_text(json.dumps(driver_cases))

    def real(name):
        return name, _run(argv(name, cases[name][0], tmp_path / "real_runs"), tmp_path)

    try:
        with ThreadPoolExecutor(2) as pool:
            reals = pool.map(real, REAL_SUBPROCESS_CASES)
            driver = _run(
                [
                    "-m",
                    "tests.entry_driver",
                    str(tmp_path / "cases.json"),
                    str(tmp_path / "out.json"),
                ],
                tmp_path,
                timeout=900,
            )
            reals = dict(reals)
    finally:
        _writable_again(ro)
    # The driver's own stderr holds what importing the libraries printed: nothing.
    assert driver.returncode == 0 and not driver.stderr.strip(), driver.stderr[-3000:]
    results = {r["name"]: r for r in json.loads((tmp_path / "out.json").read_text())}
    assert list(results) == list(cases)
    failures = []
    for name, (_, expected) in cases.items():
        r = results[name]
        failures += _contract_failures(name, r["returncode"], r["stderr"], expected)
    for name, out in reals.items():
        failures += _contract_failures(
            f"{name} (subprocess)", out.returncode, out.stderr, cases[name][1]
        )
        forked = results[name]["stderr"].replace(str(tmp_path / "runs"), "RUNS")
        if out.stderr.replace(str(tmp_path / "real_runs"), "RUNS") != forked:
            failures.append(f"{name}: subprocess {out.stderr!r} != forked {forked!r}")
    assert not failures, "\n".join(failures)
    # Nothing was encoded for the read-only workdir: the check came before any work.
    assert not list(cache.glob("images-*"))


def test_disk_full_is_one_line_and_a_bug_keeps_its_traceback(tmp_path):
    script = (
        "import errno, os\n"
        "from jaxclip import cli\n"
        "def run(config, workdir):\n"
        "    if os.environ['FAULT'] == 'full':\n"
        "        raise OSError(errno.ENOSPC, 'No space left on device', workdir + '/x.npz')\n"
        "    raise RuntimeError('an internal bug')\n"
        "cli.main(run, 'extract')\n"
    )
    args = ["-c", script, "--config=configs/extract.py:smoke", f"--workdir={tmp_path}/w"]
    full = _run(args, tmp_path, timeout=120, FAULT="full")
    lines = [line for line in full.stderr.splitlines() if line.strip()]
    assert full.returncode == 2 and len(lines) == 1, full.stderr[-2000:]
    assert "no space left on device" in lines[0] and "x.npz" in lines[0]
    bug = _run(args, tmp_path, timeout=120, FAULT="bug")
    assert bug.returncode == 1 and "Traceback" in bug.stderr and "an internal bug" in bug.stderr


# --- 5 and minor: write checks, the cache lock, NaN weights, strict, TFDS leftovers ------------


def test_check_writable_names_the_folder(tmp_path):
    from jaxclip.atomic import check_writable
    from jaxclip.errors import UserError

    assert check_writable(tmp_path / "new" / "dir", "--workdir").is_dir()
    ro = tmp_path / "ro"
    if not _read_only(ro):
        _writable_again(ro)
        pytest.skip("cannot make a folder read-only here")
    try:
        with pytest.raises(UserError, match=r"--workdir=.*ro.* is not writable"):
            check_writable(ro, "--workdir")
    finally:
        _writable_again(ro)


def test_concurrent_extractions_share_the_work(shapes_data_dir, tmp_path):
    cache = tmp_path / "cache"
    args = [
        *EXTRACT,
        "--config.splits=train",
        "--config.texts=",
        "--config.max_examples=256",
        f"--config.data_dir={shapes_data_dir}",
        f"--config.cache_dir={cache}",
    ]
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(lambda i: _run([*args, f"--workdir={tmp_path}/w{i}"], tmp_path), [0, 1])
        )
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    timings = [json.loads((tmp_path / f"w{i}" / "timings.json").read_text()) for i in (0, 1)]
    encoded = [t["throughput"]["train"]["encoded"] for t in timings]
    assert sorted(encoded) == [0, 256], encoded  # one encoded every image, the other read them
    results = [json.loads((tmp_path / f"w{i}" / "results.json").read_text()) for i in (0, 1)]
    assert results[0]["splits"] == results[1]["splits"]
    (entry,) = cache.glob("images-*")
    assert len(list(entry.glob("shard-*.npz"))) == 1 and (entry / "complete.json").is_file()


def test_nan_weights_load_with_a_warning(tiny_model, tmp_path):
    import jaxclip
    from jaxclip.models import convert
    from jaxclip.models.load import save

    flat = convert.flatten(jax.device_get(tiny_model.params))
    path = sorted(flat)[3]
    bad = np.array(flat[path], np.float32)
    bad.flat[:3] = np.nan
    flat[path] = bad
    params = convert.unflatten(flat)
    folder = tmp_path / "nan_model"
    save(folder, tiny_model.config, params, tiny_model.tokenizer, tiny_model.preprocess)
    with pytest.warns(RuntimeWarning, match=r"3 parameter value\(s\) are NaN"):
        jaxclip.load(folder)


def test_strict_is_a_config_field():
    from configs.extract import get_config

    assert get_config("smoke").strict is False


def test_dataset_names_cannot_reach_outside_the_data_dir():
    from jaxclip.config_args import ConfigError
    from jaxclip.data.datasets import check_dataset_name

    for name in ("shapes/../../etc", "cifar10/..", "shapes/*", "cifar10/[a-z]*", "shapes//x"):
        with pytest.raises(ConfigError, match="is not valid"):
            check_dataset_name(name)
    assert check_dataset_name("shapes/128") == "shapes/128"


def test_tfds_leftovers_of_a_killed_generation_are_removed(tmp_path):
    from jaxclip.data.datasets import load_dataset
    from jaxclip.data.shapes import Shapes

    version = str(Shapes.VERSION)
    leftover = tmp_path / "shapes" / "tiny" / f"incomplete.KILLED_{version}"
    leftover.mkdir(parents=True)
    (leftover / "shapes-train.array_record-00000-of-00001").write_bytes(b"half written")
    src = load_dataset("shapes/tiny", "test", data_dir=tmp_path)
    assert len(src) > 0
    assert not list((tmp_path / "shapes" / "tiny").glob("incomplete.*"))
    shutil.rmtree(tmp_path / "shapes")

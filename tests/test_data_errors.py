"""Bad webdataset / caption_pairs / cb/ inputs are one-line user errors (exit code 2 from the
entry points), not tracebacks: missing files and fields, unknown names, bad brace patterns, an
empty shard list, a truncated tar in strict mode, malformed pair files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclip import cli
from jaxclip.config_args import ConfigError
from jaxclip.data import datasets as ds
from jaxclip.data import webdataset as wds
from jaxclip.data.datasets import load_dataset
from jaxclip.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "data_dir"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    ds._VERIFY_CACHE.clear()
    wds._INDEX_CACHE.clear()


def _png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _tar(path: Path, samples: list[dict[str, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for i, sample in enumerate(samples):
            for field, data in sample.items():
                info = tarfile.TarInfo(f"s{i}.{field}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def _good(n: int = 4) -> list[dict[str, bytes]]:
    return [{"png": _png(30 * i), "cls": str(i % 2).encode()} for i in range(n)]


def _open(name: str, path, **kw):
    """Opens and indexes a source as a run does (`len` reads every shard's index)."""
    source = load_dataset(name, "test", path=path, **kw)
    len(source)
    source.info  # noqa: B018
    return source


def _one_line_user_error(fn, match: str, kind: type = UserError) -> str:
    with pytest.raises(kind, match=match) as e:
        fn()
    assert isinstance(e.value, UserError), type(e.value)
    msg = str(e.value)
    assert msg and "\n" not in msg
    return msg


@pytest.fixture
def bad(tmp_path):
    """A folder of bad inputs, one per case."""
    good = _tar(tmp_path / "good" / "test" / "0.tar", _good())
    no_cls = _good()
    del no_cls[2]["cls"]
    _tar(tmp_path / "no_cls" / "test" / "0.tar", no_cls)
    raw = _tar(tmp_path / "cut" / "test" / "0.tar", _good(6)).read_bytes()
    (tmp_path / "cut" / "test" / "0.tar").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "empty_split" / "test").mkdir(parents=True)
    no_label = [{"png": _png(i), "json": b'{"caption": "x"}'} for i in range(2)]
    _tar(tmp_path / "json_no_label" / "test" / "0.tar", no_label)
    (tmp_path / "json_no_label" / "dataset_type.txt").write_text("classification\n")
    _tar(tmp_path / "bad_count" / "test" / "0.tar", _good())
    (tmp_path / "bad_count" / "test" / "nshards.txt").write_text("two\n")
    img = tmp_path / "img.png"
    img.write_bytes(_png(9))
    (tmp_path / "one_column.csv").write_text("image,caption\nimg.png\n")
    (tmp_path / "no_caption_key.jsonl").write_text('{"image": "img.png", "label": 3}\n')
    (tmp_path / "broken.jsonl").write_text('{"image": "img.png", "caption": "a"\n')
    (tmp_path / "lost.csv").write_text("image,caption\nnowhere.png,lost\n")
    (tmp_path / "empty.csv").write_text("\n")
    (tmp_path / "pairs.xlsx").write_text("x")
    return {"root": tmp_path, "good": good}


def test_webdataset_bad_inputs_are_one_line_user_errors(bad):
    root = bad["root"]
    cases = [
        (lambda: _open("webdataset", root / "nowhere"), "is not a folder, a tar pattern"),
        (lambda: _open("webdataset", f"{root}/good/test/{{0..3}}.tar"), "matches no tar file"),
        (lambda: _open("webdataset", f"{root}/good/test/*.tar.gz.tar"), "matches no tar file"),
        (lambda: _open("webdataset", f"{root}/good/test/{{0..1.tar"), "unbalanced brace"),
        (lambda: _open("webdataset", f"{root}/good/test/{{3..0}}.tar"), "runs backwards"),
        (lambda: _open("webdataset", f"{root}/good/test/{{0..x}}.tar"), "integer range"),
        (lambda: _open("webdataset", f"{root}/good/test/{{}}0.tar"), "is not a list"),
        (lambda: _open("webdataset", root / "empty_split"), r"no \.tar shards in"),
        (lambda: wds.WebDatasetSource([]), "no shards"),
        (lambda: _open("webdataset", None), "needs path="),
        (lambda: _open("webdataset", root / "no_cls"), r"sample 's2' has no 'cls' field"),
        (lambda: _open("webdataset", root / "cut", strict=True), "truncated tar.*strict"),
        (
            lambda: wds.WebDatasetSource([bad["good"]], dataset_type="detection"),
            "dataset type 'detection' is not one of",
        ),
    ]
    cases += [
        (lambda: _open("webdataset", root / "json_no_label")[0], "no integer 'label' in its json"),
        (lambda: _open("webdataset", root / "bad_count"), "expected the shard count"),
    ]
    for fn, match in cases:
        _one_line_user_error(fn, match)
    # A split the folder does not have.
    _one_line_user_error(
        lambda: load_dataset("webdataset", "train", path=root / "good"), "no split folder 'train'"
    )
    # Without strict, the truncated shard keeps its complete samples.
    assert 0 < len(_open("webdataset", root / "cut")) < 6


def test_caption_pairs_bad_inputs_are_one_line_user_errors(bad):
    root = bad["root"]
    cases = [
        (lambda: _open("caption_pairs", root / "missing.csv"), "is not a file"),
        (lambda: _open("caption_pairs", None), "needs path="),
        (lambda: _open("caption_pairs", root / "one_column.csv"), "row 1 has 1 column"),
        (lambda: _open("caption_pairs", root / "no_caption_key.jsonl"), "a row needs an image key"),
        (lambda: _open("caption_pairs", root / "broken.jsonl"), r"broken\.jsonl:1: not a JSON"),
        (lambda: _open("caption_pairs", root / "empty.csv"), "no image-caption pairs"),
        (lambda: _open("caption_pairs", root / "pairs.xlsx"), r"must be a \.csv, \.tsv"),
        (lambda: _open("caption_pairs", root / "lost.csv", strict=True), "missing file.*strict"),
    ]
    for fn, match in cases:
        _one_line_user_error(fn, match)


def test_cb_bad_inputs_are_one_line_user_errors(bad):
    _one_line_user_error(lambda: load_dataset("cb/nope", "test"), "not in jaxclip's", ConfigError)
    _one_line_user_error(lambda: load_dataset("cb/", "test"), "empty", ConfigError)
    from jaxclip.data.clip_benchmark import lookup

    _one_line_user_error(lambda: lookup("vtab/nope"), "list them with")
    # A cb/ name whose hub repo is not cached, offline: one line saying what to download.
    _one_line_user_error(lambda: load_dataset("cb/vtab/dtd", "test"), "huggingface-cli download")
    # A local copy that is not one.
    _one_line_user_error(
        lambda: _open("cb/vtab/dtd", bad["root"] / "nowhere"), "is not a folder, a tar pattern"
    )


def test_entry_point_turns_them_into_exit_code_2(bad, tmp_path, capsys):
    """In process through `cli.run_and_report` (the entry points' error contract), then once
    as a real subprocess."""
    from configs.extract import get_config
    from experiments import extract

    root = bad["root"]
    for dataset, path, strict, match in [
        ("webdataset", root / "cut", True, "truncated tar"),
        ("webdataset", f"{root}/good/test/{{0..1.tar", False, "unbalanced brace"),
        ("caption_pairs", root / "no_caption_key.jsonl", False, "a row needs an image key"),
        ("cb/vtab/dtd", root / "no_cls", False, "has no 'cls' field"),
    ]:
        config = get_config("smoke")
        config.dataset, config.data_path, config.strict = dataset, str(path), strict
        config.cache_dir = str(tmp_path / "cache")
        config.train_split = config.test_split = "test"
        with pytest.raises(SystemExit) as e:
            cli.run_and_report(extract.run, "extract", config, str(tmp_path / "w"))
        assert e.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("error: "), err
        assert match in err, err

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "experiments.zero_shot",
            "--config=configs/zero_shot.py:smoke",
            "--config.dataset=caption_pairs",
            f"--config.data_path={root / 'missing.csv'}",
            f"--workdir={tmp_path / 'zs'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "JAX_PLATFORMS": "cpu"},
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "missing.csv' is not a file" in lines[0], proc.stderr[-2000:]

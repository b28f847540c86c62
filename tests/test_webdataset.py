"""Webdataset shards, caption-pair files and multi-label sets, all written here from shapes
images: the same features as an image folder of the same images, brace patterns, a cached hub
repo read offline, truncated tars, missing fields, two processes, the offline hub error."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclip.data import datasets as ds
from jaxclip.data import webdataset as wds
from jaxclip.data.datasets import load_dataset
from jaxclip.data.shapes import SHAPES, render_example

N, SIZE = 24, 32
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "data_dir"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    ds._VERIFY_CACHE.clear()
    wds._INDEX_CACHE.clear()


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _examples(n: int = N) -> list[dict]:
    """Shapes test images, sorted as an image folder sorts them (class folder, then name)."""
    ex = [render_example(i, 1, SIZE) for i in range(n)]
    for e in ex:
        e["rel"] = f"{SHAPES[e['label']]}/{e['index']:04d}.png"
    return sorted(ex, key=lambda e: e["rel"])


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_shards(folder: Path, samples: list[dict[str, bytes]], per_shard: int) -> list[Path]:
    """Tar shards `0.tar`, `1.tar`, ... of `samples` (dicts field -> bytes, with "__key__")."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(0, len(samples), per_shard):
        path = folder / f"{s // per_shard}.tar"
        with tarfile.open(path, "w") as tar:
            for sample in samples[s : s + per_shard]:
                for field, data in sample.items():
                    if field != "__key__":
                        _add(tar, f"{sample['__key__']}.{field}", data)
        paths.append(path)
    (folder / "nshards.txt").write_text(str(len(paths)))
    return paths


@pytest.fixture
def data(tmp_path):
    """The same images as an image folder, webdataset shards (CLIP_benchmark layout) and a CSV."""
    ex = _examples()
    classes = sorted({SHAPES[e["label"]] for e in ex})
    folder = tmp_path / "folder" / "test"
    for e in ex:
        (folder / e["rel"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / e["rel"]).write_bytes(_png(e["image"]))
    root = tmp_path / "wds"
    samples = [
        {
            "__key__": e["rel"].replace("/", "_").removesuffix(".png"),
            "png": _png(e["image"]),
            "cls": str(classes.index(SHAPES[e["label"]])).encode(),
            "txt": "\n".join(e["captions"]).encode(),
        }
        for e in ex
    ]
    shards = write_shards(root / "test", samples, per_shard=7)
    (root / "classnames.txt").write_text("\n".join(classes) + "\n")
    (root / "zeroshot_classification_templates.txt").write_text("a photo of a {c}.\n")
    pairs = tmp_path / "pairs.csv"
    rows = ["image,caption"] + [
        f"folder/test/{e['rel']},{c}" for e in ex for c in e["captions"][:2]
    ]
    pairs.write_text("\n".join(rows) + "\n")
    return {"examples": ex, "classes": classes, "folder": folder.parent, "wds": root,
            "shards": shards, "pairs": pairs}  # fmt: skip


def _items(source) -> list[dict]:
    return [source[i] for i in range(len(source))]


# ----------------------------------------------------------------------------------------------
# Reading.


def test_expand_braces():
    assert wds.expand_braces("a/{0..2}.tar") == ["a/0.tar", "a/1.tar", "a/2.tar"]
    assert wds.expand_braces("s-{008..010}.tar") == ["s-008.tar", "s-009.tar", "s-010.tar"]
    assert wds.expand_braces("{x,y}/{0..1}") == ["x/0", "x/1", "y/0", "y/1"]
    assert wds.expand_braces("plain.tar") == ["plain.tar"]
    assert wds.expand_braces("{x,{y,z}}-{0..1}") == ["x-0", "x-1", "y-0", "y-1", "z-0", "z-1"]
    with pytest.raises(ValueError, match="backwards"):
        wds.expand_braces("{3..1}")


def test_webdataset_folder_pattern_and_cached_hub_repo_agree(data, tmp_path, monkeypatch):
    src = load_dataset("webdataset", "test", path=data["wds"])
    ex = data["examples"]
    assert len(src) == N and src.info.classnames == tuple(data["classes"])
    assert src.info.has_captions and not src.info.multi_label
    assert src.templates == ("a photo of a {}.",)
    for item, e in zip(_items(src), ex, strict=True):
        np.testing.assert_array_equal(item["image"], e["image"])
        assert data["classes"][item["label"]] == SHAPES[e["label"]]
        assert item["captions"] == e["captions"]
    pattern = load_dataset("webdataset", "test", path=f"{data['wds']}/test/{{0..3}}.tar")
    assert pattern.info.fingerprint == src.info.fingerprint
    assert pattern.info.classnames == src.info.classnames  # classnames.txt found one level up
    part = load_dataset("webdataset", "test", path=f"{data['wds']}/test/{{1..2}}.tar")
    assert len(part) == 14 and part[0]["captions"] == ex[7]["captions"]
    with pytest.raises(FileNotFoundError, match="matches no tar"):
        load_dataset("webdataset", "test", path=f"{data['wds']}/test/{{0..9}}.tar")
    with pytest.raises(ValueError, match=r"no split folder 'train'.*found \['test'\]"):
        load_dataset("webdataset", "train", path=data["wds"])

    # A hub repo already in the hub cache is read offline (conftest sets HF_HUB_OFFLINE=1).
    snap = tmp_path / "hub" / "datasets--someone--wds_shapes"
    commit = "0" * 40
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text(commit)
    target = snap / "snapshots" / commit
    (target / "test").mkdir(parents=True)
    for f in ["classnames.txt", "zeroshot_classification_templates.txt"]:
        (target / f).write_bytes((data["wds"] / f).read_bytes())
    for p in [*data["shards"], data["wds"] / "test" / "nshards.txt"]:
        (target / "test" / p.name).write_bytes(p.read_bytes())
    hub = load_dataset("webdataset", "test", path="someone/wds_shapes")
    assert hub.repo == "someone/wds_shapes" and len(hub) == N
    assert hub.info.classnames == src.info.classnames
    np.testing.assert_array_equal(hub[5]["image"], src[5]["image"])


def test_hub_repo_offline_fails_at_once_in_one_line():
    t0 = time.perf_counter()
    with pytest.raises(wds.HubUnavailableError) as e:
        load_dataset("cb/vtab/caltech101", "test")
    assert time.perf_counter() - t0 < 5
    msg = str(e.value)
    assert "\n" not in msg and "HF_HUB_OFFLINE" in msg
    assert "huggingface-cli download clip-benchmark/wds_vtab-caltech101" in msg
    assert "--config.data_path=DIR" in msg


def test_truncated_tar_is_skipped_and_counted_strict_raises(data):
    last = data["shards"][-1]  # 3 samples of 3 members each
    raw = last.read_bytes()
    last.write_bytes(raw[: len(raw) // 2])
    src = load_dataset("webdataset", "test", path=data["wds"])
    assert len(src) < N and len(src) >= N - 3
    assert len(src.skipped) == 1 and "truncated tar" in src.skipped[0][1]
    _items(src)  # every kept sample reads
    wds._INDEX_CACHE.clear()
    with pytest.raises(ValueError, match="truncated tar"):
        load_dataset("webdataset", "test", path=data["wds"], strict=True).verify()


def test_missing_field_is_a_clear_error(tmp_path):
    ex = _examples(4)
    samples = [{"__key__": f"s{i}", "png": _png(e["image"]), "cls": b"0"} for i, e in enumerate(ex)]
    del samples[2]["cls"]
    write_shards(tmp_path / "w" / "test", samples, per_shard=4)
    with pytest.raises(ValueError, match=r"sample 's2' has no 'cls' field \(it has \['png'\]\)"):
        load_dataset("webdataset", "test", path=tmp_path / "w").verify()
    samples[2] = {"__key__": "s2", "cls": b"0"}
    write_shards(tmp_path / "v" / "test", samples, per_shard=4)
    with pytest.raises(ValueError, match="sample 's2' has no image field"):
        load_dataset("webdataset", "test", path=tmp_path / "v").verify()


def test_two_processes_each_read_their_rows(data, tmp_path):
    """Two processes index the shards on their own and read their halves of every batch."""
    script = textwrap.dedent(
        f"""
        import json, sys
        from jaxclip.data.datasets import load_dataset
        from jaxclip.data.pipeline import batches
        p = int(sys.argv[1])
        src = load_dataset("webdataset", "test", path={str(data["wds"])!r})
        out = [(b["index"].tolist(), b["label"].tolist(), int(b["image"].sum()))
               for b in batches(src, 8, image_size={SIZE}, shard_index=p, shard_count=2)]
        print(json.dumps([src.info.fingerprint, out]))
        """
    )
    env_dir = str(tmp_path / "data_dir")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(p)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            env={**__import__("os").environ, "JAXCLIP_DATA_DIR": env_dir},
        )
        for p in range(2)
    ]
    results = [
        json.loads(p.communicate(timeout=120)[0].decode().strip().splitlines()[-1]) for p in procs
    ]
    assert results[0][0] == results[1][0]  # same index, same fingerprint
    src = load_dataset("webdataset", "test", path=data["wds"])
    seen = []
    for (i0, l0, _), (i1, l1, _) in zip(results[0][1], results[1][1], strict=True):
        assert len(i0) == len(i1) == 4
        seen += [i for i in i0 + i1 if i >= 0]
        for i, label in zip(i0 + i1, l0 + l1, strict=True):
            if i >= 0:
                assert label == src[i]["label"]
    assert seen == list(range(N))


# ----------------------------------------------------------------------------------------------
# Caption pairs.


def test_caption_pairs_csv_tsv_jsonl(data, tmp_path):
    ex = data["examples"]
    src = load_dataset("caption_pairs", "test", path=data["pairs"])
    assert len(src) == N and src.info.has_captions and src.info.image_shape == (SIZE, SIZE)
    for item, e in zip(_items(src), ex, strict=True):
        np.testing.assert_array_equal(item["image"], e["image"])
        assert item["captions"] == e["captions"][:2] and item["label"] == -1
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("".join(f"folder/test/{e['rel']}\t{e['captions'][0]}\n" for e in ex[:3]))
    assert [x["captions"] for x in _items(load_dataset("caption_pairs", "x", path=tsv))] == [
        [e["captions"][0]] for e in ex[:3]
    ]
    jl = tmp_path / "pairs_test.jsonl"
    lines = [
        {"image": str(data["folder"] / "test" / e["rel"]), "captions": e["captions"]}
        for e in ex[:2]
    ]
    lines.append({"image": "nowhere.png", "caption": "lost"})
    jl.write_text("".join(json.dumps(x) + "\n" for x in lines))
    src = load_dataset("caption_pairs", "test", path=tmp_path / "pairs_{split}.jsonl")
    assert len(src) == 2 and src[1]["captions"] == ex[1]["captions"]
    assert src.skipped[0][1] == "missing file"
    with pytest.raises(ValueError, match="missing file"):
        load_dataset("caption_pairs", "test", path=jl, strict=True).verify()
    with pytest.raises(ValueError, match="needs path="):
        load_dataset("caption_pairs", "test")


# ----------------------------------------------------------------------------------------------
# Through extraction, zero-shot and retrieval.


def test_same_features_as_the_image_folder(data, tiny_model, tmp_path):
    from jaxclip.features.extract import extract_images

    def feats(source):
        return extract_images(
            tiny_model, source, batch_size=8, cache_root=tmp_path / "cache", progress=False
        )

    folder = feats(load_dataset("image_folder", "test", path=data["folder"]))
    shards = feats(load_dataset("webdataset", "test", path=data["wds"]))
    pairs = feats(load_dataset("caption_pairs", "test", path=data["pairs"]))
    np.testing.assert_array_equal(shards.embeds, folder.embeds)
    np.testing.assert_array_equal(pairs.embeds, folder.embeds)
    np.testing.assert_array_equal(shards.labels, folder.labels)
    assert shards.captions == [e["captions"] for e in data["examples"]]
    assert pairs.captions == [e["captions"][:2] for e in data["examples"]]
    again = feats(load_dataset("webdataset", "test", path=f"{data['wds']}/test/{{0..3}}.tar"))
    assert again.meta["encoded"] == 0  # the pattern names the same shards: read from the cache


def _smoke_config(module, tmp_path, dataset, path):
    import importlib

    config = importlib.import_module(f"configs.{module}").get_config("smoke")
    config.dataset, config.data_path = dataset, str(path)
    config.cache_dir = str(tmp_path / "cache")
    config.max_examples = 0
    config.train_split = config.test_split = "test"
    return config


def test_zero_shot_and_retrieval_end_to_end(data, tmp_path):
    from experiments import retrieval, zero_shot

    config = _smoke_config("zero_shot", tmp_path, "webdataset", data["wds"])
    results = zero_shot.run(config, str(tmp_path / "zs"))
    assert results and (tmp_path / "zs").is_dir()
    for dataset, path in (("webdataset", data["wds"]), ("caption_pairs", data["pairs"])):
        config = _smoke_config("retrieval", tmp_path, dataset, path)
        results = retrieval.run(config, str(tmp_path / f"ret_{dataset}"))
        assert results


# ----------------------------------------------------------------------------------------------
# Multi-label.


def test_voc_style_multilabel_through_extraction_and_map(tmp_path, tiny_model):
    from sklearn.metrics import average_precision_score

    from jaxclip.analysis.multilabel import mean_average_precision
    from jaxclip.features.extract import extract_images, extract_texts

    ex = _examples(20)
    # Labels: the shape, plus "colourful" for every third image (two labels on some images).
    names = [*SHAPES, "colourful thing"]
    targets = np.zeros((len(ex), len(names)), bool)
    samples = []
    for i, e in enumerate(ex):
        targets[i, e["label"]] = True
        targets[i, -1] = i % 3 == 0
        buf = io.BytesIO()
        np.save(buf, targets[i].astype(np.uint8))
        samples.append({"__key__": f"img{i:03d}", "png": _png(e["image"]), "npy": buf.getvalue()})
    root = tmp_path / "voc"
    write_shards(root / "test", samples, per_shard=8)
    (root / "classnames.txt").write_text("\n".join(names) + "\n")
    (root / "dataset_type.txt").write_text("multilabel\n")
    src = load_dataset("webdataset", "test", path=root)
    assert src.info.multi_label and src.info.num_classes == len(names)
    assert src[0]["label"] == -1
    np.testing.assert_array_equal(src[3]["labels_multi"], targets[3])
    feats = extract_images(
        tiny_model, src, batch_size=8, cache_root=tmp_path / "cache", progress=False
    )
    np.testing.assert_array_equal(feats.labels_multi, targets)
    text = extract_texts(tiny_model, [f"a photo of a {n}." for n in names], progress=False)
    img = feats.embeds / np.linalg.norm(feats.embeds, axis=1, keepdims=True)
    scores = img @ (text / np.linalg.norm(text, axis=1, keepdims=True)).T
    out = mean_average_precision(scores, feats.labels_multi)
    present = targets.any(0)
    ref = [average_precision_score(targets[:, c], scores[:, c]) for c in np.flatnonzero(present)]
    np.testing.assert_allclose(out["ap"][present], ref, rtol=1e-12)
    assert np.isnan(out["ap"][~present]).all() and out["classes"] == present.sum()
    assert out["map"] == pytest.approx(np.mean(ref))

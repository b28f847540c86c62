"""The zero-shot study on the wider dataset sources: a VOC2007-style multi-label webdataset
(per-class AP and mAP against scikit-learn) and a cb/ name read from a local copy with
`templates = "dataset"` (the prompts are CLIP_benchmark's own templates, read from the installed
clip_benchmark package's JSON)."""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxclip.data import datasets as ds
from jaxclip.data import webdataset as wds
from jaxclip.data.shapes import SHAPES, render_example

SIZE = 32


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


def _write_tar(path: Path, samples: list[dict[str, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for sample in samples:
            for field, data in sample.items():
                if field == "__key__":
                    continue
                info = tarfile.TarInfo(f"{sample['__key__']}.{field}")
                info.size, info.mtime = len(data), 0
                tar.addfile(info, io.BytesIO(data))


def _smoke_config(tmp_path: Path, dataset: str, path: Path):
    config = importlib.import_module("configs.zero_shot").get_config("smoke")
    config.dataset, config.data_path = dataset, str(path)
    config.cache_dir = str(tmp_path / "cache")
    config.max_examples = 0
    config.train_split = config.test_split = "test"
    return config


def _cb_json(name: str) -> dict:
    spec = importlib.util.find_spec("clip_benchmark")
    if spec is None:
        pytest.skip("clip_benchmark is not installed (`pip install --no-deps clip-benchmark`)")
    return json.loads((Path(spec.submodule_search_locations[0]) / "datasets" / name).read_text())


def test_multilabel_zero_shot_reports_ap_and_map_as_scikit_learn(tmp_path, tiny_model):
    from sklearn.metrics import average_precision_score

    from experiments import zero_shot
    from jaxclip.features.extract import extract_images, extract_texts

    # VOC2007-style: multi-hot `npy` label vectors; the shape, plus "colourful thing" on every
    # third image; "unicorn" is on no image (no AP, left out of the mean).
    ex = [render_example(i, 1, SIZE) for i in range(18)]
    names = [*SHAPES, "colourful thing", "unicorn"]
    targets = np.zeros((len(ex), len(names)), bool)
    samples = []
    for i, e in enumerate(ex):
        targets[i, e["label"]] = True
        targets[i, len(SHAPES)] = i % 3 == 0
        buf = io.BytesIO()
        np.save(buf, targets[i].astype(np.uint8))
        samples.append({"__key__": f"img{i:03d}", "png": _png(e["image"]), "npy": buf.getvalue()})
    root = tmp_path / "voc"
    _write_tar(root / "test" / "0.tar", samples[:10])
    _write_tar(root / "test" / "1.tar", samples[10:])
    (root / "classnames.txt").write_text("\n".join(names) + "\n")
    (root / "dataset_type.txt").write_text("multilabel\n")

    workdir = tmp_path / "run"
    zero_shot.run(_smoke_config(tmp_path, "webdataset", root), str(workdir))
    got = json.loads((workdir / "results.json").read_text())["zero_shot"]

    # The reference: the same model's embeddings, cosine scores, scikit-learn's AP per class.
    src = ds.load_dataset("webdataset", "test", path=root)
    feats = extract_images(
        tiny_model, src, batch_size=8, cache_root=tmp_path / "c2", progress=False
    )
    text = extract_texts(tiny_model, [f"a photo of a {n}." for n in names], progress=False)
    img = feats.embeds / np.linalg.norm(feats.embeds, axis=1, keepdims=True)
    scores = img.astype(np.float64) @ (text / np.linalg.norm(text, axis=1, keepdims=True)).T
    present = targets.any(0)
    ref = {
        names[c]: average_precision_score(targets[:, c], scores[:, c])
        for c in np.flatnonzero(present)
    }
    rows = {r["class"]: r for r in got["average_precision"]}
    assert list(rows) == names
    for name, value in ref.items():
        assert rows[name]["ap"] == pytest.approx(value, rel=1e-5)
    assert rows["unicorn"]["ap"] is None and rows["unicorn"]["positives"] == 0
    assert [rows[n]["positives"] for n in names] == targets.sum(0).tolist()
    assert got["map_classes"] == len(ref) == len(names) - 1
    assert got["mean_average_precision"] == pytest.approx(np.mean(list(ref.values())), rel=1e-5)
    assert got["chance_map"] == pytest.approx(targets[:, present].mean(0).mean())
    cb_map = got["clip_benchmark"]["mean_average_precision"]
    assert cb_map == pytest.approx(sum(ref.values()) / len(names), rel=1e-5)
    assert got["num_samples"] == len(ex) and "top1" not in got

    record = json.loads((workdir / "clip_benchmark.json").read_text())
    records = record if isinstance(record, list) else [record]
    assert records[0]["metrics"] == {"mean_average_precision": cb_map}
    report = (workdir / "report.md").read_text()
    assert f"mAP = {100 * got['mean_average_precision']:.2f} % over {len(ref)} classes" in report
    assert "1 class(es) without a positive image" in report
    best = max(ref, key=ref.get)
    assert f"| {best} " in report.split("Average precision per class")[1]


def test_dataset_templates_of_a_cb_name_are_clip_benchmarks(tmp_path):
    """cb/vtab/eurosat from a local copy: `templates = "dataset"` prompts every class with
    CLIP_benchmark's eurosat templates, in its order; the prompts study expands it alike."""
    from experiments import zero_shot
    from jaxclip.studies import context
    from jaxclip.studies.prompts import expand_templates
    from jaxclip.studies.shared import resolve_template_set

    cb_templates = _cb_json("en_zeroshot_classification_templates.json")["eurosat"]
    classnames = _cb_json("en_classnames.json")["eurosat"]
    expected = [t.replace("{c}", "{}") for t in cb_templates]
    ex = [render_example(i, 1, SIZE) for i in range(6)]
    samples = [
        {"__key__": f"s{i}", "png": _png(e["image"]), "cls": str(i % 3).encode()}
        for i, e in enumerate(ex)
    ]
    copy = tmp_path / "wds_vtab-eurosat"
    _write_tar(copy / "test" / "0.tar", samples)

    seen: list[str] = []
    texts = context.RunContext.texts

    def recording(self, strings):
        seen.extend(strings)
        return texts(self, strings)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(context.RunContext, "texts", recording)
        config = _smoke_config(tmp_path, "cb/vtab/eurosat", copy)
        config.zero_shot.templates = "dataset"
        zero_shot.run(config, str(tmp_path / "zs"))
    got = json.loads((tmp_path / "zs" / "results.json").read_text())["zero_shot"]
    assert got["templates"]["templates"] == expected and len(expected) > 1
    assert got["templates"]["set"] == "cb/vtab/eurosat"
    assert got["num_classes"] == len(classnames) == 10
    want = {t.replace("{c}", c) for c in classnames for t in cb_templates}
    assert set(seen) == want

    # The prompts study expands "dataset" (single templates and ensembles) the same way.
    assert expand_templates(("dataset",), "cb/vtab/eurosat") == expected
    assert resolve_template_set("dataset", "cb/wds/vtab/eurosat")[:2] == (
        "cb/vtab/eurosat",
        tuple(expected),
    )

"""The CLIP_benchmark name table: names, validation, class names and templates vs. the
clip_benchmark package's JSON files, the published numbers, and a local copy of a repo."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from jaxclip.config_args import ConfigError
from jaxclip.data import clip_benchmark as cb
from jaxclip.data import clip_benchmark_text as text
from jaxclip.data.datasets import check_dataset_name, load_dataset
from jaxclip.report import references

# CLIP_benchmark's benchmark/webdatasets.txt (its hub collection), without the "wds/" prefix.
WEBDATASETS = """mscoco_captions flickr8k flickr30k imagenet1k imagenetv2 imagenet_sketch imagenet-a
imagenet-r imagenet-o objectnet fer2013 voc2007 voc2007_multilabel sun397 cars fgvc_aircraft
mnist stl10 gtsrb country211 renderedsst2 vtab/caltech101 vtab/cifar10 vtab/cifar100
vtab/clevr_count_all vtab/clevr_closest_object_distance vtab/diabetic_retinopathy vtab/dmlab
vtab/dsprites_label_orientation vtab/dsprites_label_x_position vtab/dsprites_label_y_position
vtab/dtd vtab/eurosat vtab/kitti_closest_vehicle_distance vtab/flowers vtab/pets vtab/pcam
vtab/resisc45 vtab/smallnorb_label_azimuth vtab/smallnorb_label_elevation vtab/svhn""".split()


def _cb_json(name: str) -> dict:
    if importlib.util.find_spec("clip_benchmark") is None:
        pytest.skip("clip_benchmark is not installed (`pip install --no-deps clip-benchmark`)")
    spec = importlib.util.find_spec("clip_benchmark")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / name
    return json.loads(path.read_text())


def test_every_webdataset_and_the_named_sets_are_in_the_table():
    assert set(WEBDATASETS) <= set(cb.CLIP_BENCHMARK)
    for name in ("flickr8k", "flickr30k", "imagenetv2", "imagenet_sketch", "imagenet-a"):
        assert name in cb.CLIP_BENCHMARK
    assert {"imagenet-r", "objectnet", "voc2007_multilabel"} <= set(cb.CLIP_BENCHMARK)
    assert cb.CLIP_BENCHMARK["vtab/caltech101"].repo == "clip-benchmark/wds_vtab-caltech101"
    assert cb.CLIP_BENCHMARK["flickr30k"].task == cb.RETRIEVAL
    assert cb.CLIP_BENCHMARK["voc2007_multilabel"].task == cb.MULTILABEL
    assert cb.CLIP_BENCHMARK["cifar100"].tfds == "cifar100"
    assert cb.lookup("wds/vtab/dtd") is cb.lookup("cb/vtab/dtd") is cb.CLIP_BENCHMARK["vtab/dtd"]


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("cb/../../etc", r"'\.\.' parts"),
        ("cb/vtab/../x", r"'\.\.' parts"),
        ("cb/", "empty"),
        ("cb/nope", "not in jaxclip's CLIP_benchmark table; list them with"),
        ("cb/winoground", "CLIP_benchmark has it, but image-caption selection"),
        ("nope/x", "choose one of"),
    ],
)
def test_bad_names_give_one_line_config_errors(name, match):
    with pytest.raises(ConfigError, match=match) as e:
        check_dataset_name(name)
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError):
        load_dataset(name, "test")


def test_good_names_pass():
    for name in ["cb/vtab/caltech101", "cb/cifar100", "cb/wds/imagenet-a", "shapes/128"]:
        assert check_dataset_name(name) == name


def test_classnames_and_templates_match_clip_benchmark_json():
    names, templates = (
        _cb_json("en_classnames.json"),
        _cb_json("en_zeroshot_classification_templates.json"),
    )
    assert {k: list(v) for k, v in text.CB_CLASSNAMES.items()} == names
    assert {
        k: [t.replace("{}", "{c}") for t in v] for k, v in text.CB_TEMPLATES.items()
    } == templates
    for entry in cb.CLIP_BENCHMARK.values():
        if entry.task == cb.RETRIEVAL:
            continue
        # CLIP_benchmark's lookup: the full name, the name after the prefix, then imagenet1k.
        key = next(k for k in (entry.name, entry.short_name, "imagenet1k") if k in templates)
        assert [t.replace("{}", "{c}") for t in entry.templates()] == templates[key]
        got = entry.classnames()
        for k in (entry.name, "caltech101_vtab" if entry.name == "vtab/caltech101" else None):
            if k in names:
                assert list(got) == names[k]


def test_imagenet_variants_use_imagenet_names():
    a = cb.CLIP_BENCHMARK["imagenet-a"].classnames()
    r = cb.CLIP_BENCHMARK["imagenet-r"].classnames()
    assert len(a) == len(r) == 200 and a[0] == "stingray" and r[0] == "goldfish"
    assert cb.CLIP_BENCHMARK["imagenetv2"].classnames() == text.CB_CLASSNAMES["imagenet1k"]
    for entry in cb.CLIP_BENCHMARK.values():
        for t in entry.templates():
            assert t.count("{}") == 1


def test_published_numbers():
    top1 = references.lookup(references.ZERO_SHOT_TOP1, "vit_b32", "cb/imagenet1k")
    assert top1["CLIP_benchmark"] == pytest.approx(63.33)
    assert references.lookup(references.ZERO_SHOT_TOP1, "vit_b32", "cifar10")["CLIP paper"] == 91.3
    ret = references.lookup(references.RETRIEVAL, "vit_b32", "cb/mscoco_captions")
    assert ret["text_to_image"][5] == pytest.approx(55.85)
    mp = references.lookup(references.MULTILABEL_MAP, "vit_b32", "cb/voc2007_multilabel")
    assert mp["CLIP_benchmark"] == pytest.approx(76.01)
    for _model, name in references.CB_ZERO_SHOT_TOP1:
        assert name.removeprefix("cb/") in cb.CLIP_BENCHMARK


def test_cb_name_reads_a_local_copy_with_the_tables_class_names(tmp_path, monkeypatch):
    import io
    import tarfile

    import numpy as np
    from PIL import Image

    monkeypatch.setenv("JAXCLIP_DATA_DIR", str(tmp_path / "data_dir"))
    (tmp_path / "copy" / "test").mkdir(parents=True)
    with tarfile.open(tmp_path / "copy" / "test" / "0.tar", "w") as tar:
        for i in range(3):
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(buf, format="PNG")
            for field, data in (("png", buf.getvalue()), ("cls", str(i).encode())):
                info = tarfile.TarInfo(f"s{i}.{field}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    src = load_dataset("cb/vtab/pets", "test", path=tmp_path / "copy")
    assert src.info.name == "cb/vtab/pets"
    assert src.info.classnames == text.CB_CLASSNAMES["pets"]
    assert [src[i]["label"] for i in range(3)] == [0, 1, 2]

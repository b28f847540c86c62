"""Training the CLIP on a user's own image-caption pairs (`dataset = "caption_pairs"`): a CSV
the test writes from the shapes/tiny training images trains and its loss falls; it is the same
data as shapes/tiny itself (same first-batch loss, bit for bit); `data_path` leaves the default
run's identity hash alone; mixed image sizes are resized to one."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from configs.train_clip import get_config
from jaxclip import train
from jaxclip.data.datasets import load_dataset


def _smoke(shapes_data_dir, **overrides):
    c = get_config("smoke")
    c.data_dir = str(shapes_data_dir)
    c.progress = False
    for k, v in overrides.items():
        c[k] = v
    return c


@pytest.fixture(scope="module")
def pairs(shapes_data_dir, tmp_path_factory):
    """shapes/tiny's train split as a pairs CSV: every image a PNG, one row per caption, in the
    split's order (so a caption_pairs source lists the same images in the same order)."""
    folder = tmp_path_factory.mktemp("pairs")
    source = load_dataset("shapes/tiny", "train", data_dir=shapes_data_dir)
    with open(folder / "pairs.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption"])
        for i in range(len(source)):
            item = source[i]
            Image.fromarray(item["image"]).save(folder / f"{i:04d}.png")
            writer.writerows([f"{i:04d}.png", c] for c in item["captions"])
    return folder / "pairs.csv"


def test_data_path_enters_the_identity_only_when_set():
    c = get_config()
    assert c.data_path == ""
    without = get_config()
    del without["data_path"]
    assert train.identity_hash(c) == train.identity_hash(without)
    c.data_path = "/data/pairs.csv"
    assert train.identity_hash(c) != train.identity_hash(without)
    assert train.run_identity(c)["data_path"] == "/data/pairs.csv"


def test_caption_pairs_train_like_the_same_images_as_shapes(pairs, shapes_data_dir, tmp_path):
    import jax
    import jax.numpy as jnp
    import optax

    from jaxclip.data.preprocess import PreprocessConfig
    from jaxclip.models.clip import CLIP
    from jaxclip.models.tokenizer import Tokenizer
    from jaxclip.report.training import write_run

    fewer_saves = {"checkpoint_every": get_config("smoke").num_steps}
    shapes = train.train(_smoke(shapes_data_dir, **fewer_saves), tmp_path / "a", stop_after=1)
    config = _smoke(shapes_data_dir, dataset="caption_pairs", data_path=str(pairs), **fewer_saves)
    result = train.train(config, tmp_path / "pairs")
    losses = [r["loss"] for r in result.metrics]
    assert len(losses) == config.num_steps == result.num_steps
    # Same images, captions and order: the first batch is the same batch.
    assert losses[0] == shapes.metrics[0]["loss"]
    assert result.zero_shot == {}  # pairs carry no attribute labels to evaluate
    saved = json.loads((tmp_path / "pairs" / train.CONFIG_FILE).read_text())
    assert saved["identity"]["data_path"] == str(pairs)
    assert saved["model"]["vision_config"]["image_size"] == 32
    results = write_run(config, result, tmp_path / "pairs")
    assert results["config"]["data_path"] == str(pairs)
    assert "on caption_pairs" in (tmp_path / "pairs" / "report.md").read_text()

    # The contrastive loss on 64 fixed pairs of the file falls from init to the end.
    rows = list(csv.reader(open(pairs, encoding="utf-8")))[1:]
    first: dict[str, str] = {}
    for image, caption in rows:
        first.setdefault(image, caption)
    names = list(first)[:64]
    images = np.stack([np.asarray(Image.open(pairs.parent / n)) for n in names])
    ids = Tokenizer.openai(32)([first[n] for n in names])
    module = CLIP(train.model_config(config, 32))
    pixels = PreprocessConfig(image_size=32)
    x = (images / 255.0 - np.array(pixels.mean)) / np.array(pixels.std)

    @jax.jit
    def loss(params):
        out = module.apply({"params": params}, jnp.asarray(x, jnp.float32), ids)
        a = out["image_embeds"] / jnp.linalg.norm(out["image_embeds"], axis=1, keepdims=True)
        b = out["text_embeds"] / jnp.linalg.norm(out["text_embeds"], axis=1, keepdims=True)
        logits = jnp.exp(out["logit_scale"]) * a @ b.T
        return optax.softmax_cross_entropy_with_integer_labels(logits, jnp.arange(64)).mean()

    before = float(loss(train.init_params(module, config.seed)))
    after = float(loss(result.params))
    assert after < before - 0.05, (before, after)


def test_pairs_of_mixed_sizes_are_resized_and_captions_cycled(pairs, tmp_path):
    rows = list(csv.reader(open(pairs, encoding="utf-8")))[1:]
    first = {}
    for image, caption in rows:
        first.setdefault(image, caption)
    images = list(first)[:4]
    big = np.asarray(Image.open(pairs.parent / images[0]).resize((48, 40)))
    Image.fromarray(big).save(tmp_path / "big.png")
    file = tmp_path / "mixed.csv"
    lines = [["image", "caption"], ["big.png", "a"], ["big.png", "b"], ["big.png", "c"]]
    lines += [[str(pairs.parent / im), first[im]] for im in images[1:]]
    with open(file, "w", newline="") as f:
        csv.writer(f).writerows(lines)
    data = train._load_data(
        _smoke("", dataset="caption_pairs", data_path=str(file)), "train", tokenizer=object()
    )
    assert data.images.shape == (4, 32, 32, 3)
    from jaxclip.data.preprocess import resize_crop_host

    np.testing.assert_array_equal(data.images[0], resize_crop_host(big, 32))
    assert data.captions[0] == ["a", "b", "c"]
    assert data.captions[1] == [first[images[1]]] * 3

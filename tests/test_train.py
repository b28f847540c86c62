"""Tests of jaxclip.train, configs/train_clip.py and experiments/train_clip.py.

Tiny model (width 64, depth 2) on shapes/tiny (256 train / 128 test at 32 px), a handful of
steps; tests/conftest.py gives 2 virtual CPU devices, so the default runs are data-parallel.
The expensive things (the dataset, one reference run through the entry point) are module
fixtures.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs.train_clip import SMOKE_STEPS, check_config, get_config, mini_config
from jaxclip import train
from jaxclip.config_args import ConfigError
from jaxclip.data import load_dataset
from jaxclip.data.preprocess import PreprocessConfig
from jaxclip.models import catalog
from jaxclip.models.clip import CLIP
from jaxclip.models.tokenizer import Tokenizer, trim_to_eos

# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    from jaxclip.data.shapes import shapes_builder

    d = tmp_path_factory.mktemp("tfds")
    shapes_builder("tiny", data_dir=d)
    return str(d)


def smoke(data_dir: str, **overrides):
    c = get_config("smoke")
    c.data_dir = data_dir
    c.progress = False
    for k, v in overrides.items():
        c[k] = v
    return c


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    """One uninterrupted smoke run through the entry point (2 devices): (workdir, results)."""
    from experiments.train_clip import run

    workdir = tmp_path_factory.mktemp("reference")
    return workdir, run(smoke(data_dir), workdir)


def tree_equal(a, b) -> bool:
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    return ta == tb and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def load_params(model_dir: Path):
    import jaxclip

    return jax.device_get(jaxclip.load(model_dir).params)


# --- pure pieces -------------------------------------------------------------------------------


def test_batch_indices_pure_and_each_epoch_a_permutation():
    n, b = 10, 4
    steps = [train.batch_indices(7, s, n, b, 5) for s in range(5)]  # 20 positions = 2 epochs
    again = [train.batch_indices(7, s, n, b, 5) for s in reversed(range(5))][::-1]
    for (i1, c1), (i2, c2) in zip(steps, again):  # order of calls does not matter
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(c1, c2)
    images = np.concatenate([i for i, _ in steps])
    assert sorted(images[:10]) == list(range(10)) and sorted(images[10:]) == list(range(10))
    assert not np.array_equal(images[:10], images[10:])  # a new permutation per epoch
    caps = np.concatenate([c for _, c in steps])
    assert caps.min() >= 0 and caps.max() <= 4 and len(set(caps.tolist())) > 1
    assert not np.array_equal(train.batch_indices(8, 0, n, b, 5)[0], steps[0][0])  # seed matters
    with pytest.raises(ValueError, match="step"):
        train.batch_indices(0, -1, n, b, 5)


def test_schedule_warmup_then_cosine():
    c = get_config("smoke")
    c.learning_rate, c.warmup_steps, c.num_steps, c.end_lr_factor = 2e-3, 4, 14, 0.1
    sched = train.learning_rate_schedule(c)
    for s in range(15):
        if s <= 4:
            want = 2e-3 * s / 4
        else:
            frac = (s - 4) / 10
            want = 2e-4 + (2e-3 - 2e-4) * 0.5 * (1 + math.cos(math.pi * frac))
        assert float(sched(s)) == pytest.approx(want, rel=1e-5, abs=1e-9), s


def tiny_module(image_size=32):
    c = get_config("smoke")
    return CLIP(train.model_config(c, image_size)), c


def test_weight_decay_only_on_kernels():
    module, c = tiny_module()
    params = train.init_params(module, 0)
    mask = train.weight_decay_mask(params)
    flat = {
        "/".join(str(getattr(k, "key", k)) for k in p): v
        for p, v in jax.tree_util.tree_flatten_with_path(mask)[0]
    }
    assert flat["logit_scale"] is False
    assert flat["text_model/embeddings/token_embedding/embedding"] is False
    assert flat["text_model/embeddings/position_embedding/embedding"] is False
    assert flat["vision_model/embeddings/class_embedding"] is False
    assert flat["vision_model/pre_layrnorm/scale"] is False
    assert flat["text_model/encoder/layers/0/self_attn/q_proj/bias"] is False
    assert flat["text_model/encoder/layers/0/self_attn/q_proj/kernel"] is True
    assert flat["vision_model/embeddings/patch_embedding/kernel"] is True
    assert flat["visual_projection/kernel"] is True
    # AdamW with zero gradients: only decayed leaves move, by exactly -lr * wd * p.
    c.grad_clip_norm, c.warmup_steps, c.learning_rate, c.weight_decay = 0.0, 0, 0.01, 0.5
    opt = train.make_optimizer(c)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = jax.jit(opt.update)(zeros, opt.init(params), params)
    for path, u in jax.tree_util.tree_flatten_with_path(updates)[0]:
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        value = np.asarray(_get(params, path))
        if flat[name]:
            np.testing.assert_allclose(np.asarray(u), -0.01 * 0.5 * value, rtol=1e-6, atol=1e-12)
        else:
            assert not np.any(np.asarray(u)), name


def _get(tree, path):
    for k in path:
        tree = tree[getattr(k, "key", k)]
    return tree


def test_trim_to_eos_keeps_text_embeddings():
    module, _ = tiny_module()
    params = train.init_params(module, 1)
    tok = Tokenizer.openai(32)
    ids = tok(["a red circle", "two small blue squares in the top left on a striped background"])
    short = trim_to_eos(ids, tok.eos_token_id)
    assert short.shape == (2, int(np.argmax(ids[1] == tok.eos_token_id)) + 1)
    enc = jax.jit(lambda p, x: module.apply({"params": p}, x, method=CLIP.encode_text)[0])
    np.testing.assert_allclose(enc(params, short), enc(params, ids), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="EOS"):
        trim_to_eos(np.ones((1, 4), np.int32), tok.eos_token_id)


def test_train_step_clamps_logit_scale_and_is_data_parallel():
    assert len(jax.devices()) == 2
    module, c = tiny_module()
    mesh = train.make_mesh(0)
    sched = train.learning_rate_schedule(c)
    # An "optimiser" that adds +1 to every parameter: t must end exactly at the clamp ln 100.
    opt = optax.GradientTransformation(
        lambda p: optax.EmptyState(), lambda g, s, p=None: (jax.tree.map(jnp.ones_like, g), s)
    )
    params = train.init_params(module, 0)
    params["logit_scale"] = jnp.asarray(train.MAX_LOGIT_SCALE - 1e-3)
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": opt.init(params)}
    step = train.make_train_step(module, opt, sched, mesh, PreprocessConfig(image_size=32))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    ids = np.full((8, 6), 49407, np.int32)
    ids[:, 0], ids[:, 1:4] = 49406, rng.integers(300, 2000, (8, 3))
    new, metrics = step(state, images, ids)
    assert float(new["params"]["logit_scale"]) == np.float32(math.log(100.0))
    bias = "text_model/final_layer_norm/bias".split("/")
    np.testing.assert_array_equal(_get(new["params"], bias), _get(params, bias) + 1)
    assert int(new["step"]) == 1
    assert new["params"]["logit_scale"].sharding.device_set == set(jax.devices())
    # The metrics follow the loss's definition on the global batch.
    out = module.apply(
        {"params": params},
        (images / 255.0 - np.array(PreprocessConfig().mean)) / np.array(PreprocessConfig().std),
        ids,
    )
    v = np.asarray(out["image_embeds"], np.float64)
    t = np.asarray(out["text_embeds"], np.float64)
    logits = (
        100.0
        * np.exp(-1e-3)
        * (v / np.linalg.norm(v, axis=1, keepdims=True))
        @ (t / np.linalg.norm(t, axis=1, keepdims=True)).T
    )
    lse_r = np.log(np.exp(logits).sum(1))
    lse_c = np.log(np.exp(logits).sum(0))
    want = np.mean(0.5 * (lse_r + lse_c) - np.diag(logits))
    assert float(metrics["loss"]) == pytest.approx(want, rel=1e-4)
    assert float(metrics["accuracy_i2t"]) == pytest.approx(
        np.mean(logits.argmax(1) == np.arange(8))
    )


def test_evaluate_zero_shot_attributes_with_a_planted_model():
    """A fake model right about shape and colour by construction and always saying "small"."""
    names = {
        "shape": ("circle", "square", "star"),
        "color": ("red", "blue"),
        "size": ("small", "medium", "large"),
    }
    rng = np.random.default_rng(0)
    n = 40
    labels = {k: rng.integers(0, len(v), n) for k, v in names.items()}
    images = np.zeros((n, 4, 4, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(n)  # the fake encoder reads the example index here
    data = train.CaptionedArrays(images, [[]] * n, labels, names, "fake")
    words = [w for k in ("shape", "color") for w in names[k]] + ["small", "other"]

    class Fake:
        def encode_image(self, x, **kw):
            out = np.zeros((len(x), len(words)))
            for row, i in enumerate(x[:, 0, 0, 0]):
                out[row, words.index(names["shape"][labels["shape"][i]])] = 1
                out[row, words.index(names["color"][labels["color"][i]])] = 1
                out[row, words.index("small")] = 0.5
            return out

        def encode_text(self, texts):
            out = np.zeros((len(texts), len(words)))
            for r, t in enumerate(texts):
                for j, w in enumerate(words):
                    out[r, j] = w in t.split()
                if "medium" in t or "large" in t:  # cos 0.5/1.5/sqrt(2) < "small"'s 0.5/1.5
                    out[r, words.index("small")] = out[r, words.index("other")] = 1
            return out

    res = train.evaluate_zero_shot_attributes(Fake(), data)
    assert res["shape"]["accuracy"] == 1.0 and res["color"]["accuracy"] == 1.0
    assert res["size"]["accuracy"] == pytest.approx(np.mean(labels["size"] == 0))
    assert res["size"]["chance"] == pytest.approx(1 / 3) and res["shape"]["num_classes"] == 3
    assert res["shape"]["prompt"] == "a photo of a {}" and res["size"]["per_class"]["small"] == 1.0


# --- configs -----------------------------------------------------------------------------------


def test_config_variants_and_bad_values_give_clear_errors():
    c = get_config("smoke")
    assert c.dataset == "shapes/tiny" and c.num_steps == SMOKE_STEPS and c.model.vision_width == 64
    check_config(c)
    default = get_config()
    assert default.dataset == "shapes" and default.name == "mini"
    assert train.identity_hash(default) == train.identity_hash(mini_config())
    big = get_config("shapes128")
    assert big.dataset == "shapes/128" and big.model.patch_size == 32
    with pytest.raises(ConfigError, match=r"'bogus'.*shapes, shapes128, shapes32, tiny"):
        get_config("bogus")
    for field, value, needle in [
        ("batch_size", 0, "batch_size=0"),
        ("compute_dtype", "fp16", "compute_dtype='fp16'.*float32"),
        ("logit_scale_init", 5.0, "ln 100"),
        ("b2", 1.0, "b2"),
    ]:
        bad = get_config("smoke")
        bad[field] = value
        with pytest.raises(ConfigError, match=needle):
            check_config(bad)
    bad = get_config("smoke")
    bad.model.vision_heads = 3
    with pytest.raises(ConfigError, match="width=64 is not divisible by heads=3"):
        check_config(bad)


def test_identity_hash_ignores_bookkeeping_fields():
    a, b = get_config("smoke"), get_config("smoke")
    b.log_every, b.data_dir, b.checkpoint_every, b.num_devices = 7, "/elsewhere", 5, 1
    assert train.identity_hash(a) == train.identity_hash(b)
    b.num_steps += 1
    assert train.identity_hash(a) != train.identity_hash(b)


# --- training runs -----------------------------------------------------------------------------


def test_entry_point_writes_its_files_and_the_loss_falls(reference, data_dir):
    workdir, results = reference
    for name in [
        "results.json",
        "metrics.csv",
        "report.md",
        "training_curves.png",
        "train_metrics.jsonl",
        "train_metrics.csv",
        "zero_shot.json",
        "DONE.json",
    ]:
        assert (workdir / name).is_file(), name
    stored = json.loads((workdir / "results.json").read_text())
    assert stored["training"]["steps"] == results["training"]["steps"] == SMOKE_STEPS
    assert set(stored["zero_shot"]) == {"shape", "color", "size"}
    assert "Zero-shot attribute accuracy" in (workdir / "report.md").read_text()
    steps = [r["step"] for r in train.read_metrics(workdir / "train_metrics.jsonl")]
    assert steps == list(range(1, SMOKE_STEPS + 1))
    # The contrastive loss on a fixed set of training pairs falls from init to the end.
    c = smoke(data_dir)
    data = train.read_split(load_dataset(c.dataset, "train", data_dir=data_dir))

    ids = Tokenizer.openai(32)([caps[0] for caps in data.captions[:128]])
    module = CLIP(train.model_config(c, 32))
    pixels = PreprocessConfig(image_size=32)
    x = (data.images[:128] / 255.0 - np.array(pixels.mean)) / np.array(pixels.std)

    @jax.jit
    def loss(params):
        out = module.apply({"params": params}, jnp.asarray(x, jnp.float32), ids)
        return optax.softmax_cross_entropy_with_integer_labels(
            jnp.exp(out["logit_scale"]) * _cos(out["image_embeds"], out["text_embeds"]),
            jnp.arange(128),
        ).mean()

    before = float(loss(train.init_params(module, c.seed)))
    after = float(loss(load_params(workdir / "model")))
    assert after < before - 0.05, (before, after)


def _cos(a, b):
    a = a / jnp.linalg.norm(a, axis=1, keepdims=True)
    b = b / jnp.linalg.norm(b, axis=1, keepdims=True)
    return a @ b.T


def test_saved_model_loads_with_jaxclip_load_and_encodes(reference, data_dir):
    import jaxclip

    workdir, _ = reference
    model = jaxclip.load(workdir / "model")
    assert model.config.vision.image_size == 32 and model.config.projection_dim == 64
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    emb = model.encode_image(images)
    txt = model.encode_text(["a photo of a circle", "a red shape"])
    assert emb.shape == (3, 64) and txt.shape == (2, 64) and np.all(np.isfinite(emb))
    # Same as running the module on the params restored from the final checkpoint.
    pre = PreprocessConfig(image_size=32)
    x = ((images / 255.0 - np.array(pre.mean)) / np.array(pre.std)).astype(np.float32)
    direct = model.module.apply({"params": model.params}, x, method=CLIP.encode_image)[0]
    np.testing.assert_allclose(emb, direct, rtol=1e-5, atol=1e-5)
    cfg = json.loads((workdir / "model" / "config.json").read_text())
    assert cfg["architectures"] == ["CLIPModel"]
    # The loaded model reproduces the zero-shot numbers the run stored (split given by name).
    again = train.evaluate_zero_shot_attributes(
        model, "test", dataset="shapes/tiny", data_dir=data_dir
    )
    stored = json.loads((workdir / "zero_shot.json").read_text())
    for attr in ("shape", "color", "size"):
        assert again[attr]["accuracy"] == pytest.approx(stored[attr]["accuracy"], abs=1 / 128)


def test_one_device_matches_two(reference, data_dir, tmp_path):
    workdir, _ = reference
    one = train.train(smoke(data_dir, num_devices=1), tmp_path / "one", evaluate=False)
    two = load_params(workdir / "model")
    for (path, a), b in zip(
        jax.tree_util.tree_flatten_with_path(one.params)[0], jax.tree.leaves(two)
    ):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5, err_msg=str(path))


def test_kill_and_resume_is_bit_identical(reference, data_dir, tmp_path):
    workdir, _ = reference
    c = smoke(data_dir)
    first = train.train(c, tmp_path, stop_after=3)  # "killed" after step 3, saved at step 2
    assert first.model_dir is None and first.num_steps == 3
    assert not (tmp_path / "model").exists() and not train.is_finished(tmp_path)
    resumed = train.train(c, tmp_path, evaluate=False)
    assert resumed.start_step == 2 and resumed.num_steps == SMOKE_STEPS
    assert tree_equal(resumed.params, load_params(workdir / "model"))
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == (
        workdir / "model" / "model.safetensors"
    ).read_bytes()
    steps = [r["step"] for r in train.read_metrics(tmp_path / train.METRICS_FILE)]
    assert steps == list(range(1, SMOKE_STEPS + 1))  # steps 3.. logged once, not twice


def test_interrupted_checkpoint_writes_are_ignored(reference, data_dir, tmp_path):
    workdir, _ = reference
    c = smoke(data_dir)
    train.train(c, tmp_path, stop_after=2)  # checkpoint at step 2
    ckpts = tmp_path / train.CHECKPOINT_DIR
    # A write cut by kill -9 (orbax's temporary folder) ...
    tmp = ckpts / "4.orbax-checkpoint-tmp-1700000000"
    shutil.copytree(ckpts / "2", tmp)
    (tmp / "default" / "manifest.ocdbt").unlink(missing_ok=True)
    # ... and a step folder whose files were lost after it was finalised.
    broken = ckpts / "5"
    (broken / "default").mkdir(parents=True)
    (broken / "default" / "_METADATA").write_text("{not json")
    # A torn last metrics line.
    with open(tmp_path / train.METRICS_FILE, "a") as f:
        f.write('{"step": 3, "loss": 1.')
    resumed = train.train(c, tmp_path, evaluate=False)
    assert resumed.start_step == 2
    assert tree_equal(resumed.params, load_params(workdir / "model"))
    assert sorted(p.name for p in ckpts.iterdir() if not p.name.startswith(".")) == ["2", "4", "6"]


def test_resume_with_another_config_is_refused(data_dir, tmp_path):
    c = smoke(data_dir)
    train.train(c, tmp_path, stop_after=1)
    c.learning_rate = 1e-4
    with pytest.raises(ValueError, match=r"different config \(fields \['learning_rate'\]\)"):
        train.train(c, tmp_path)


def test_train_or_reuse_resumes_then_reuses(data_dir, tmp_path, monkeypatch):
    c = smoke(data_dir)
    workdir = train.models_root(tmp_path) / f"train_clip-{train.identity_hash(c)}"
    train.train(c, workdir, stop_after=2)  # an interrupted earlier attempt
    path = train.train_or_reuse(c, cache_dir=tmp_path)
    assert path == workdir / "model" and train.is_finished(workdir)
    done = json.loads((workdir / train.DONE_FILE).read_text())
    assert done["step"] == SMOKE_STEPS and done["steps_run"] == SMOKE_STEPS - 2  # resumed

    def no_training(*a, **k):
        raise AssertionError("train_or_reuse trained again")

    monkeypatch.setattr(train, "train", no_training)
    c2 = smoke("/another/data/dir", log_every=3)  # bookkeeping fields: same identity
    assert train.train_or_reuse(c2, cache_dir=tmp_path) == path
    assert catalog.trained_model_dir(c2.name, cache_dir=tmp_path) == path  # recorded by name
    monkeypatch.setenv("JAXCLIP_CACHE", str(tmp_path))
    assert train.models_root() == tmp_path / "models"


def test_catalog_opens_only_a_trained_mini(tmp_path):
    """The library never trains: `mini` without a finished run is one clear error."""
    with pytest.raises(catalog.ModelNotTrained, match=r"'mini'.*--config\.model=mini"):
        catalog.open_model("mini", cache_dir=str(tmp_path))
    probe = "import sys, jaxclip.models.catalog; print('jaxclip.train' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the catalog does not import the training code

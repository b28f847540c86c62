"""Training with SigLIP's sigmoid loss (`config.loss = "sigmoid"`): the mini-SigLIP recipe.

One smoke run (tiny model on shapes/tiny) stopped one step before its end and resumed: the
loss logged at the last step is checked against numpy float64 on the parameters of the step
before it (what that step's loss was computed from), and the saved folder and the catalog name
give the learned logit bias back.
"""

from __future__ import annotations

import json

import ml_collections
import numpy as np
import pytest

from configs.train_clip import SMOKE_STEPS, get_config
from jaxclip import train
from jaxclip.config_args import ConfigError
from jaxclip.models import catalog
from jaxclip.models.tokenizer import Tokenizer, trim_to_eos


def _numpy_sigmoid_loss(v, t, scale, bias) -> float:
    """−(1/N) Σ_j Σ_k log σ(z_jk (scale·cos_jk + bias)), numpy float64 (Zhai et al. 2023, Eq. 1)."""
    v = np.asarray(v, np.float64)
    t = np.asarray(t, np.float64)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    t = t / np.linalg.norm(t, axis=1, keepdims=True)
    logits = float(scale) * (v @ t.T) + float(bias)
    z = 2.0 * np.eye(len(v)) - 1.0
    return float(np.sum(np.logaddexp(0.0, -z * logits)) / len(v))


def _without_loss_fields(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config as it was before the loss fields existed."""
    d = config.to_dict()
    for k in ("loss", *train.SIGMOID_FIELDS):
        del d[k]
    return ml_collections.ConfigDict(d)


def test_default_identity_is_unchanged_by_the_loss_fields():
    for variant in ("smoke", None, "shapes128"):
        c = get_config(variant)
        assert c.loss == "softmax"
        assert train.identity_hash(c) == train.identity_hash(_without_loss_fields(c))
    s = get_config("smoke,sigmoid")
    assert s.loss == "sigmoid" and s.name == "smoke"
    assert get_config("sigmoid").name == "mini_siglip"
    assert train.identity_hash(s) != train.identity_hash(get_config("smoke"))
    # The sigmoid fields matter only to a sigmoid run; logit_scale_init only to a softmax one.
    a = get_config("smoke")
    a.sigmoid_logit_bias_init = -5.0
    assert train.identity_hash(a) == train.identity_hash(get_config("smoke"))
    b = get_config("smoke,sigmoid")
    b.sigmoid_logit_bias_init = -5.0
    assert train.identity_hash(b) != train.identity_hash(s)
    b = get_config("smoke,sigmoid")
    b.logit_scale_init = 1.0
    assert train.identity_hash(b) == train.identity_hash(s)
    bad = get_config("smoke")
    bad.loss = "hinge"
    with pytest.raises(ConfigError, match=r"loss.*'hinge'.*softmax.*sigmoid"):
        train.check_config(bad)


def test_sigmoid_smoke_training_matches_numpy_and_loads_with_its_bias(shapes_data_dir, tmp_path):
    import jaxclip
    from jaxclip.data.preprocess import PreprocessConfig, normalize

    c = get_config("smoke,sigmoid")
    c.data_dir, c.progress, c.checkpoint_every = str(shapes_data_dir), False, 1
    workdir = catalog.models_root(tmp_path) / "run"
    # Stop before the last step (as a kill would), keep those params, then finish the run.
    before = train.train(c, workdir, stop_after=SMOKE_STEPS - 1)
    assert before.num_steps == SMOKE_STEPS - 1 and before.model_dir is None
    done = train.train(c, workdir, evaluate=False)
    assert done.start_step == SMOKE_STEPS - 1 and done.num_steps == SMOKE_STEPS
    records = done.metrics
    assert [r["step"] for r in records] == list(range(1, SMOKE_STEPS + 1))
    # SigLIP's init: t = exp(log 10) = 10, b = -10 at the first step; the loss falls.
    assert records[0]["logit_scale"] == pytest.approx(10.0)
    assert records[0]["logit_bias"] == pytest.approx(-10.0)
    assert records[-1]["loss"] < records[0]["loss"]

    # The last step's loss, from the params it started from, on its own batch.
    p = before.params
    data = train._load_data(c, c.train_split, None)
    tok = Tokenizer.openai(int(c.model.context_length))
    tokens = trim_to_eos(train.tokenize_captions(data.captions, tok), tok.eos_token_id)
    img, cap = train.batch_indices(
        int(c.seed), SMOKE_STEPS - 1, len(data), int(c.batch_size), tokens.shape[1]
    )
    module, *_ = train._setup(
        before.config,
        c.compute_dtype,
        tuple((k, c[k]) for k in train.OPTIMIZER_FIELDS),
        tuple(train.make_mesh(0).devices.flat),
        PreprocessConfig(image_size=32),
        "sigmoid",
    )
    pixels = normalize(data.images[img], PreprocessConfig(image_size=32))
    out = module.apply({"params": p}, pixels, tokens[img, cap])
    scale = np.exp(np.float64(p["logit_scale"]))
    want = _numpy_sigmoid_loss(out["image_embeds"], out["text_embeds"], scale, p["logit_bias"])
    assert records[-1]["loss"] == pytest.approx(want, rel=1e-4)
    assert records[-1]["logit_scale"] == pytest.approx(scale, rel=1e-6)
    assert records[-1]["logit_bias"] == pytest.approx(float(p["logit_bias"]), abs=1e-6)

    # The saved folder and the catalog name give the final logit bias back.
    final_bias = float(done.params["logit_bias"])
    assert final_bias != -10.0
    cfg = json.loads((workdir / "model" / "config.json").read_text())
    assert cfg["logit_bias_init_value"] == -10.0
    loaded = jaxclip.load(workdir / "model")
    assert float(loaded.params["logit_bias"]) == final_bias
    assert loaded.config.logit_bias_init_value == -10.0
    catalog.record_trained("mini_siglip", workdir / "model", cache_dir=tmp_path)
    named = catalog.open_model("mini_siglip", cache_dir=str(tmp_path))
    assert named.name == "mini_siglip" and float(named.params["logit_bias"]) == final_bias

"""SigLIP towers, conversion and loading, against transformers' PyTorch `SiglipModel`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import SiglipConfig as HFSiglipConfig
from transformers import SiglipModel

import jaxclip
from jaxclip.models import convert_siglip
from jaxclip.models.convert import CheckpointError
from jaxclip.models.load import from_params
from jaxclip.models.siglip import siglip_logits
from jaxclip.models.variants import from_hf_siglip_config

# Two sizes no other test or variant uses. The second has an image size that is not a multiple
# of its patch (as So400m/14 at 384 px): the patch conv drops the remainder.
SIZES = {
    "w48": dict(
        vision=dict(
            image_size=24,
            patch_size=6,
            hidden_size=48,
            num_hidden_layers=2,
            num_attention_heads=3,
            intermediate_size=80,
        ),
        text=dict(
            vocab_size=120,
            max_position_embeddings=16,
            hidden_size=40,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=72,
            projection_size=48,
        ),
    ),
    "w32_remainder": dict(
        vision=dict(
            image_size=30,
            patch_size=8,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
        ),
        text=dict(
            vocab_size=90,
            max_position_embeddings=12,
            hidden_size=56,
            num_hidden_layers=1,
            num_attention_heads=7,
            intermediate_size=40,
            projection_size=32,
        ),
    ),
}


def hf_siglip(size: str, seed: int = 0) -> SiglipModel:
    """transformers' SiglipModel of the named size, every parameter randomised."""
    torch.manual_seed(seed)
    s = SIZES[size]
    model = SiglipModel(HFSiglipConfig(vision_config=s["vision"], text_config=s["text"])).eval()
    with torch.no_grad():
        for _, p in model.named_parameters():
            p.copy_(0.3 * torch.randn_like(p) + (1.0 if p.ndim == 1 and p.numel() > 1 else 0.0))
    return model


def inputs(model: SiglipModel, n: int = 3, seed: int = 1):
    rng = np.random.default_rng(seed)
    v, t = model.config.vision_config, model.config.text_config
    pixels = rng.standard_normal((n, v.image_size, v.image_size, 3)).astype(np.float32)
    ids = rng.integers(0, t.vocab_size, (n, t.max_position_embeddings)).astype(np.int32)
    return pixels, ids


def torch_outputs(model: SiglipModel, pixels: np.ndarray, ids: np.ndarray):
    with torch.no_grad():
        px = torch.from_numpy(pixels).permute(0, 3, 1, 2)
        ti = torch.from_numpy(ids).long()
        img = model.get_image_features(pixel_values=px).pooler_output.numpy()
        txt = model.get_text_features(input_ids=ti).pooler_output.numpy()
        logits = model(input_ids=ti, pixel_values=px).logits_per_image.numpy()
    return img, txt, logits


def state_dict(model: SiglipModel) -> dict[str, np.ndarray]:
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("size", list(SIZES))
def test_parity_with_transformers(size, tmp_path):
    model = hf_siglip(size)
    model.save_pretrained(tmp_path)
    loaded = jaxclip.load(tmp_path)
    assert type(loaded.module).__name__ == "Siglip"
    pixels, ids = inputs(model)
    want_img, want_txt, want_logits = torch_outputs(model, pixels, ids)
    img = loaded.encode_pixels(pixels)
    txt = loaded.encode_token_ids(ids)
    np.testing.assert_allclose(img, want_img, atol=1e-5, rtol=0)
    np.testing.assert_allclose(txt, want_txt, atol=1e-5, rtol=0)
    p = loaded.params
    logits = np.asarray(siglip_logits(img, txt, p["logit_scale"], p["logit_bias"]))
    np.testing.assert_allclose(logits, want_logits, atol=1e-5, rtol=0)
    # the embeddings are not trivially equal across inputs (the check can fail)
    assert np.abs(want_img[0] - want_img[1]).max() > 1e-2
    assert np.abs(want_txt[0] - want_txt[1]).max() > 1e-2


def test_hf_round_trip_and_errors():
    model = hf_siglip("w48")
    config = from_hf_siglip_config(model.config.to_dict())
    sd = state_dict(model)
    params = convert_siglip.hf_torch_to_params(sd, config)
    back = convert_siglip.params_to_hf_torch(params, config)
    assert set(back) == set(sd) - {k for k in sd if k.endswith("position_ids")}
    for k, v in back.items():
        np.testing.assert_array_equal(v, sd[k], err_msg=k)
    bad = dict(sd)
    del bad["vision_model.head.probe"]
    bad["text_model.head.weight"] = np.zeros((3, 3), np.float32)
    bad["extra.weight"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointError) as e:
        convert_siglip.hf_torch_to_params(bad, config)
    msg = str(e.value)
    assert "vision_model.head.probe" in msg and "extra.weight" in msg
    assert "text_model.head.weight expected (48, 40) got (3, 3)" in msg


def test_jit_equals_eager_and_bfloat16_close():
    model = hf_siglip("w32_remainder")
    config = from_hf_siglip_config(model.config.to_dict())
    params = convert_siglip.hf_torch_to_params(state_dict(model), config)
    pixels, ids = inputs(model)
    f32 = from_params(config, params)
    eager = f32.module.apply({"params": f32.params}, pixels, method="encode_image")[0]
    np.testing.assert_allclose(f32.encode_pixels(pixels), np.asarray(eager), rtol=1e-6, atol=1e-5)
    bf16 = from_params(config, params, dtype="bfloat16")
    ref = f32.encode_token_ids(ids)
    got = bf16.encode_token_ids(ids)
    cos = (ref * got).sum(-1) / np.linalg.norm(ref, axis=-1) / np.linalg.norm(got, axis=-1)
    assert cos.min() > 0.99


def test_encode_token_ids_checks_input():
    model = hf_siglip("w48")
    config = from_hf_siglip_config(model.config.to_dict())
    loaded = from_params(config, convert_siglip.hf_torch_to_params(state_dict(model), config))
    with pytest.raises(ValueError, match="token id 120 is outside the vocabulary"):
        loaded.encode_token_ids(np.full((1, 16), 120))
    with pytest.raises(ValueError, match="0 < L <= 16"):
        loaded.encode_token_ids(np.zeros((1, 17), np.int32))
    with pytest.raises(ValueError, match="no tokenizer"):
        loaded.encode_text(["a cat"])


def test_clip_encode_token_ids_matches_encode_text(tiny_model):
    texts = ["a photo of a cat", "two red squares"]
    ids = tiny_model.token_ids(texts)
    np.testing.assert_array_equal(tiny_model.encode_token_ids(ids), tiny_model.encode_text(texts))


def test_config_json_round_trip():
    model = hf_siglip("w48")
    config = from_hf_siglip_config(json.loads(model.config.to_json_string()))
    from jaxclip.models.variants import to_hf_siglip_config

    again = HFSiglipConfig(**to_hf_siglip_config(config))
    assert from_hf_siglip_config(again.to_dict()) == config
    with pytest.raises(ValueError, match="model_type='clip'"):
        from_hf_siglip_config({"model_type": "clip"})


def test_save_opens_in_transformers_and_jaxclip(tmp_path):
    model = hf_siglip("w32_remainder", seed=7)
    config = from_hf_siglip_config(model.config.to_dict())
    loaded = from_params(config, convert_siglip.hf_torch_to_params(state_dict(model), config))
    loaded.save(tmp_path)
    again = SiglipModel.from_pretrained(tmp_path).eval()
    pixels, ids = inputs(model)
    want_img, want_txt, want_logits = torch_outputs(model, pixels, ids)
    got_img, got_txt, got_logits = torch_outputs(again, pixels, ids)
    np.testing.assert_array_equal(got_img, want_img)
    np.testing.assert_array_equal(got_txt, want_txt)
    np.testing.assert_array_equal(got_logits, want_logits)
    reopened = jaxclip.load(tmp_path)
    assert reopened.config == config and reopened.preprocess == loaded.preprocess
    assert reopened.fingerprint == loaded.fingerprint

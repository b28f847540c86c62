"""big_vision `.npz` SigLIP checkpoints: built from random arrays in big_vision's layout, they
load to the same embeddings as the transformers copy of the same weights."""

from __future__ import annotations

import numpy as np
import pytest

import jaxclip
from jaxclip.models import convert_siglip
from jaxclip.models.convert import CheckpointError, flatten
from jaxclip.models.variants import from_hf_siglip_config
from tests.test_siglip import hf_siglip, inputs, state_dict, torch_outputs


def test_npz_loads_to_the_same_embeddings_as_the_hf_folder(tmp_path):
    model = hf_siglip("w48", seed=4)
    config = from_hf_siglip_config(model.config.to_dict())
    params = convert_siglip.hf_torch_to_params(state_dict(model), config)
    arrays = convert_siglip.params_to_big_vision(params, config)
    # big_vision's layout, by hand: MHA kernels (W, H, W/H), out (H, W/H, W), (1, N, W) positions
    blk = "params/img/Transformer/encoderblock_1/MultiHeadDotProductAttention_0"
    assert arrays[f"{blk}/query/kernel"].shape == (48, 3, 16)
    assert arrays[f"{blk}/query/bias"].shape == (3, 16)
    assert arrays[f"{blk}/out/kernel"].shape == (3, 16, 48)
    assert arrays["params/img/pos_embedding"].shape == (1, 16, 48)
    assert arrays["params/txt/pos_embedding"].shape == (1, 16, 40)
    assert arrays["params/t"].shape == arrays["params/b"].shape == (1,)
    sd = state_dict(model)
    np.testing.assert_array_equal(
        arrays[f"{blk}/query/kernel"].reshape(48, 48),
        sd["vision_model.encoder.layers.1.self_attn.q_proj.weight"].T,
    )
    path = tmp_path / "siglip_w48.npz"
    np.savez(path, **arrays)
    loaded = jaxclip.load(path)  # no config.json: the architecture comes from the shapes
    assert loaded.config == config
    pixels, ids = inputs(model)
    want_img, want_txt, _ = torch_outputs(model, pixels, ids)
    np.testing.assert_allclose(loaded.encode_pixels(pixels), want_img, atol=1e-5, rtol=0)
    np.testing.assert_allclose(loaded.encode_token_ids(ids), want_txt, atol=1e-5, rtol=0)


def test_scanned_layout_and_errors():
    model = hf_siglip("w48", seed=5)
    config = from_hf_siglip_config(model.config.to_dict())
    params = convert_siglip.hf_torch_to_params(state_dict(model), config)
    arrays = convert_siglip.params_to_big_vision(params, config)
    scanned = {}
    for k, v in arrays.items():
        if "/encoderblock_" in k:
            head, rest = k.split("/encoderblock_")
            i, tail = rest.split("/", 1)
            scanned.setdefault(f"{head}/encoderblock/{tail}", {})[int(i)] = v
        else:
            scanned[k] = v
    scanned = {
        k: np.stack([v[i] for i in sorted(v)]) if isinstance(v, dict) else v
        for k, v in scanned.items()
    }
    again = convert_siglip.big_vision_to_params(scanned, config)
    for p, x in flatten(params).items():
        np.testing.assert_array_equal(flatten(again)[p], x, err_msg="/".join(p))
    bad = dict(arrays)
    del bad["params/txt/head/bias"]
    bad["params/img/head/kernel"] = np.zeros((48, 10), np.float32)
    with pytest.raises(CheckpointError) as e:
        convert_siglip.big_vision_to_params(bad, config)
    msg = str(e.value)
    assert "params/txt/head/bias" in msg and "params/img/head/kernel" in msg
    assert "head after the pooling" in msg


def test_catalog_and_hub_path(tmp_path, monkeypatch):
    """Catalog names -> hub ids; the hub path (stubbed) asks for the SentencePiece file too."""
    import huggingface_hub

    from jaxclip.models import catalog
    from jaxclip.models import load as load_mod

    want = {
        "siglip_b16": "google/siglip-base-patch16-224",
        "siglip_b16_256": "google/siglip-base-patch16-256",
        "siglip_so400m14_384": "google/siglip-so400m-patch14-384",
        "siglip2_b16": "google/siglip2-base-patch16-224",
    }
    calls = []
    real_load = load_mod.load
    monkeypatch.setattr(load_mod, "load", lambda name, **kw: calls.append(name) or name)
    for key, repo in want.items():
        assert catalog.MODELS[key][1]() == repo
        assert load_mod.HUB_ALIASES[key] == repo
    monkeypatch.setattr(load_mod, "load", real_load)

    model = hf_siglip("w32_remainder", seed=6)
    model.save_pretrained(tmp_path)
    asked = []

    class FakeApi:
        def list_repo_files(self, repo_id):
            return ["config.json", "model.safetensors", "spiece.model", "README.md"]

    def fake_snapshot_download(repo_id, allow_patterns=None, **kw):
        asked.append((repo_id, allow_patterns))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr("jaxclip.hub.unavailable", lambda *a, **k: "")  # the fake hub answers
    loaded = jaxclip.load("siglip_b16")
    ((repo, patterns),) = asked
    assert repo == "google/siglip-base-patch16-224"
    assert {"config.json", "model.safetensors", "spiece.model"} <= set(patterns)
    pixels, ids = inputs(model)
    want_img, _, _ = torch_outputs(model, pixels, ids)
    np.testing.assert_allclose(loaded.encode_pixels(pixels), want_img, atol=1e-5, rtol=0)

"""Checkpoint conversion and `jaxclip.load` / `save`, against OpenAI's and transformers' code."""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pytest
import torch
from flax.serialization import msgpack_serialize
from safetensors.numpy import save_file
from transformers import CLIPModel

import jaxclip
from jaxclip import hub
from jaxclip.models import convert
from jaxclip.models.convert import CheckpointError
from jaxclip.models.load import from_params, save
from jaxclip.models.variants import CLIPConfig, TextConfig, VisionConfig, to_hf_config
from tests.reference_models import (
    hf_clip_model,
    tiny_openai_clip,
    torch_encode,
    torch_state_dict,
)

# The package exports the function `load`, which hides the submodule of the same name.
load_mod = importlib.import_module("jaxclip.models.load")


VOCAB, CTX = 300, 77  # OpenAI's attention mask is built for the full context.


@pytest.fixture(scope="module")
def openai_model():
    return tiny_openai_clip(
        embed_dim=24,
        image_resolution=32,
        vision_layers=2,
        vision_width=128,  # OpenAI: heads = width // 64 = 2
        vision_patch_size=8,
        context_length=CTX,
        vocab_size=VOCAB,
        transformer_width=128,
        transformer_heads=2,
        transformer_layers=2,
    )


def openai_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 32, 32, 3)).astype(np.float32)
    ids = np.zeros((3, CTX), np.int32)
    for i, n in enumerate((3, 10, CTX - 2)):
        ids[i, 0] = VOCAB - 2
        ids[i, 1 : 1 + n] = rng.integers(1, VOCAB - 2, n)
        ids[i, 1 + n] = VOCAB - 1  # EOT, the largest id: OpenAI pools at argmax
    return x, ids


def encode_text_ids(loaded, ids):
    return np.asarray(loaded._text_fn(loaded.params, ids))


def test_openai_safetensors_parity(openai_model, tmp_path):
    path = tmp_path / "ViT-tiny-openai.safetensors"
    save_file(torch_state_dict(openai_model), str(path))
    loaded = jaxclip.load(path)  # "openai" in the name: quick_gelu without a warning
    cfg = loaded.config
    assert (cfg.vision.width, cfg.vision.heads, cfg.vision.layers, cfg.vision.patch_size) == (
        128,
        2,
        2,
        8,
    )
    assert (cfg.text.vocab_size, cfg.text.eos_token_id, cfg.projection_dim) == (
        VOCAB,
        VOCAB - 1,
        24,
    )
    x, ids = openai_inputs()
    ref_img, ref_txt = torch_encode(openai_model, x, ids)
    np.testing.assert_allclose(loaded.encode_pixels(x), ref_img, rtol=0, atol=1e-5)
    np.testing.assert_allclose(encode_text_ids(loaded, ids), ref_txt, rtol=0, atol=1e-5)
    assert float(loaded.params["logit_scale"]) == pytest.approx(np.log(1 / 0.07), abs=1e-6)


def test_openai_activation_warning_and_override(openai_model, tmp_path):
    path = tmp_path / "weights.safetensors"
    save_file(torch_state_dict(openai_model), str(path))
    with pytest.warns(UserWarning, match="assuming 'quick_gelu'"):
        assert jaxclip.load(path).config.vision.act == "quick_gelu"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gelu = jaxclip.load(path, hidden_act="gelu")
    assert gelu.config.text.act == "gelu"
    x, _ = openai_inputs()
    ref_img, _ = torch_encode(openai_model, x, openai_inputs()[1])
    assert np.abs(gelu.encode_pixels(x) - ref_img).max() > 1e-4  # the activation matters


def test_open_clip_config_sets_activation(openai_model, tmp_path):
    save_file(torch_state_dict(openai_model), str(tmp_path / "open_clip_model.safetensors"))
    cfg = {
        "model_cfg": {
            "embed_dim": 24,
            "quick_gelu": False,
            "vision_cfg": {"width": 128},
            "text_cfg": {"heads": 2},
        },
        "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3},
    }
    (tmp_path / "open_clip_config.json").write_text(json.dumps(cfg))
    loaded = jaxclip.load(tmp_path)  # an OpenCLIP hub folder
    assert loaded.config.vision.act == "gelu" and loaded.preprocess.mean == (0.5, 0.5, 0.5)


def test_pickle_refused_without_opt_in(openai_model, tmp_path):
    path = tmp_path / "model.pt"
    torch.save(openai_model.state_dict(), path)
    with pytest.raises(PermissionError, match="allow_pickle=True"):
        jaxclip.load(path)
    loaded = jaxclip.load(path, allow_pickle=True, hidden_act="quick_gelu")
    x, ids = openai_inputs()
    ref_img, ref_txt = torch_encode(openai_model, x, ids)
    np.testing.assert_allclose(loaded.encode_pixels(x), ref_img, atol=1e-5)
    np.testing.assert_allclose(encode_text_ids(loaded, ids), ref_txt, atol=1e-5)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::DeprecationWarning")
def test_torchscript_archive_like_openai_releases(openai_model, tmp_path):
    x, ids = openai_inputs()
    traced = torch.jit.trace(
        openai_model, (torch.tensor(x[:1].transpose(0, 3, 1, 2)), torch.tensor(ids[:1]).long())
    )
    path = tmp_path / "ViT-tiny.pt"
    traced.save(str(path))
    with pytest.raises(PermissionError):
        jaxclip.load(path)
    loaded = jaxclip.load(path, allow_pickle=True)  # TorchScript: OpenAI's, quick_gelu, no warning
    ref_img, _ = torch_encode(openai_model, x, ids)
    np.testing.assert_allclose(loaded.encode_pixels(x), ref_img, atol=1e-5)


def test_openai_ddp_wrapped_checkpoint(openai_model):
    sd = {"state_dict": {f"module.{k}": v for k, v in torch_state_dict(openai_model).items()}}
    cfg, params = convert.openai_to_params(sd)
    _, plain = convert.openai_to_params(torch_state_dict(openai_model))
    assert cfg.vision.layers == 2
    for p, a in convert.flatten(plain).items():
        np.testing.assert_array_equal(convert.flatten(params)[p], a)


# --- transformers folders -----------------------------------------------------------------------

SMALL = CLIPConfig(
    VisionConfig(image_size=32, patch_size=8, width=32, layers=2, heads=2, mlp_dim=64, act="gelu"),
    TextConfig(vocab_size=49408, context_length=77, width=32, layers=2, heads=2, mlp_dim=64),
    projection_dim=16,
)


def torch_small(seed: int = 0) -> CLIPModel:
    torch.manual_seed(seed)
    return hf_clip_model(to_hf_config(SMALL), attn_implementation=None)


def random_images(n=2, h=40, w=50, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_hf_torch_round_trip_is_exact():
    sd = torch_state_dict(torch_small())
    back = convert.params_to_hf_torch(convert.hf_torch_to_params(sd, SMALL))
    assert set(back) == set(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(back[k], v, err_msg=k)
        assert back[k].shape == v.shape
    assert back["logit_scale"].shape == ()


def test_save_then_transformers_and_load_give_same_embeddings(tmp_path):
    model = torch_small(seed=1)
    params = convert.hf_torch_to_params(torch_state_dict(model), SMALL)
    save(tmp_path, SMALL, params)
    assert {"config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json"} <= {
        p.name for p in tmp_path.iterdir()
    }
    reloaded_torch = CLIPModel.from_pretrained(tmp_path).eval()
    ours = jaxclip.load(tmp_path)
    texts = ["a photo of a cat.", "a drawing of a dog"]
    images = random_images()
    from transformers import AutoTokenizer, CLIPImageProcessor

    tok = AutoTokenizer.from_pretrained(tmp_path)  # the saved tokenizer opens in transformers
    proc = CLIPImageProcessor.from_pretrained(tmp_path)
    batch = tok(texts, padding="max_length", max_length=77, return_tensors="pt")
    np.testing.assert_array_equal(batch["input_ids"].numpy(), ours.tokenizer(texts))
    pix = proc(images=list(images), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ref_txt = reloaded_torch.get_text_features(input_ids=batch["input_ids"]).pooler_output
        ref_img = reloaded_torch.get_image_features(pixel_values=pix).pooler_output
    np.testing.assert_allclose(ours.encode_text(texts), ref_txt.numpy(), atol=1e-5)
    np.testing.assert_allclose(ours.encode_image(images), ref_img.numpy(), atol=1e-5)
    np.testing.assert_allclose(
        ours.encode_image(images, preprocess="device"), ref_img.numpy(), atol=1e-5
    )
    for k, v in torch_state_dict(reloaded_torch).items():  # the weights themselves survived
        np.testing.assert_array_equal(v, torch_state_dict(model)[k])


def test_msgpack_round_trip(tmp_path):
    params = convert.hf_torch_to_params(torch_state_dict(torch_small(seed=2)), SMALL)
    save(tmp_path / "st", SMALL, params)
    folder = tmp_path / "flax"
    folder.mkdir()
    (folder / "config.json").write_text((tmp_path / "st" / "config.json").read_text())
    (folder / "flax_model.msgpack").write_bytes(msgpack_serialize(params))
    a, b = jaxclip.load(tmp_path / "st"), jaxclip.load(folder)
    assert a.fingerprint == b.fingerprint
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.encode_pixels(x), b.encode_pixels(x))
    assert jaxclip.load(folder / "flax_model.msgpack").fingerprint == a.fingerprint


def test_pytorch_bin_folder_needs_allow_pickle(tmp_path):
    model = torch_small(seed=3)
    model.config.save_pretrained(tmp_path)  # transformers v5 only writes safetensors itself
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(PermissionError, match="pickle"):
        jaxclip.load(tmp_path)
    loaded = jaxclip.load(tmp_path, allow_pickle=True)
    want = convert.hf_torch_to_params(torch_state_dict(model), SMALL)
    assert loaded.fingerprint == from_params(SMALL, want).fingerprint


def test_wrong_checkpoint_names_every_problem():
    sd = torch_state_dict(torch_small())
    del sd["vision_model.post_layernorm.bias"]
    sd["vision_model.extra_head.weight"] = np.zeros(3, np.float32)
    sd["text_projection.weight"] = np.zeros((7, 32), np.float32)
    with pytest.raises(CheckpointError) as e:
        convert.hf_torch_to_params(sd, SMALL, source="bad.safetensors")
    msg = str(e.value)
    assert "bad.safetensors" in msg
    assert "missing (1): vision_model.post_layernorm.bias" in msg
    assert "unexpected (1): vision_model.extra_head.weight" in msg
    assert "wrong shape (1): text_projection.weight expected (16, 32) got (7, 32)" in msg


def test_wrong_openai_checkpoint_and_resnet_hint(openai_model):
    sd = torch_state_dict(openai_model)
    sd["visual.transformer.resblocks.1.attn.in_proj_weight"] = np.zeros((5, 128), np.float32)
    del sd["ln_final.bias"]
    with pytest.raises(
        CheckpointError,
        match=r"missing \(1\): ln_final.bias.*wrong shape \(1\): "
        r"visual.transformer.resblocks.1.attn.in_proj_weight expected \(384, 128\)",
    ):
        convert.openai_to_params(sd)
    with pytest.raises(CheckpointError, match="ResNet"):
        convert.infer_openai_config({"visual.layer1.0.conv1.weight": np.zeros((1,))})


def test_msgpack_with_wrong_config_is_one_error(tmp_path):
    params = convert.hf_torch_to_params(torch_state_dict(torch_small()), SMALL)
    bigger = CLIPConfig(SMALL.vision, SMALL.text, projection_dim=20)
    with pytest.raises(CheckpointError, match=r"wrong shape \(2\).*text_projection/kernel"):
        convert.check_params(params, bigger)


def test_unknown_name_says_what_was_tried(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        jaxclip.load("nobody/no-such-clip-model")  # offline in tests: the hub cannot answer
    msg = str(e.value)
    assert "tried" in msg and "local path" in msg and "nobody/no-such-clip-model" in msg
    with pytest.raises(FileNotFoundError, match="not of the form owner/name"):
        jaxclip.load("definitely not a model")
    with pytest.raises(FileNotFoundError, match=r"does not exist.*a missing weights file"):
        jaxclip.load("checkpoints/ViT-B-32.safetensors")
    with pytest.raises(FileNotFoundError, match="alias 'ViT-B/32' -> openai/clip-vit-base-patch32"):
        jaxclip.load("ViT-B/32")
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match=r"config\.json.*open_clip_model\.safetensors"):
        jaxclip.load(tmp_path)
    with pytest.raises(ValueError, match="dtype='float16'"):
        jaxclip.load(tmp_path, dtype="float16")


def test_hub_download_fetches_only_the_chosen_format(tmp_path, monkeypatch):
    """The hub path, with huggingface_hub stubbed: which files it asks for, then a real load."""
    import huggingface_hub

    params = convert.hf_torch_to_params(torch_state_dict(torch_small()), SMALL)
    save(tmp_path, SMALL, params)
    calls = []

    class FakeApi:
        def list_repo_files(self, repo_id):
            return ["config.json", "model.safetensors", "flax_model.msgpack", "pytorch_model.bin"]

    def fake_snapshot_download(repo_id, allow_patterns=None, **kw):
        calls.append((repo_id, allow_patterns, kw))
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(hub, "unavailable", lambda *a, **k: "")  # the stubbed hub answers
    loaded = jaxclip.load("someone/tiny-clip")
    assert loaded.name == "someone/tiny-clip"
    ((repo, patterns, _),) = calls
    assert repo == "someone/tiny-clip" and "model.safetensors" in patterns
    assert "flax_model.msgpack" not in patterns and "pytorch_model.bin" not in patterns
    assert loaded.fingerprint == from_params(SMALL, params).fingerprint


# --- LoadedCLIP behaviour -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_loaded():
    return from_params(SMALL, convert.hf_torch_to_params(torch_state_dict(torch_small()), SMALL))


def test_batching_pads_and_matches_one_call(small_loaded):
    x = np.random.default_rng(1).standard_normal((5, 32, 32, 3)).astype(np.float32)
    whole = small_loaded.encode_pixels(x)
    np.testing.assert_allclose(small_loaded.encode_pixels(x, batch_size=2), whole, atol=1e-6)
    assert small_loaded.encode_pixels(x[:0]).shape == (0, 16)
    texts = [f"a photo of number {i}" for i in range(5)]
    np.testing.assert_allclose(
        small_loaded.encode_text(texts, batch_size=3), small_loaded.encode_text(texts), atol=1e-6
    )
    images = random_images(3, 30, 70)
    np.testing.assert_allclose(
        small_loaded.encode_image(images, batch_size=2),
        small_loaded.encode_image(images, preprocess="device"),
        atol=1e-6,
    )
    ragged = [images[0], images[1, :20]]  # host path takes images of different sizes
    assert small_loaded.encode_image(ragged).shape == (2, 16)


def test_encoder_argument_errors(small_loaded):
    with pytest.raises(ValueError, match="preprocess='gpu'"):
        small_loaded.encode_image(random_images(), preprocess="gpu")
    with pytest.raises(TypeError, match="use encode_image"):
        small_loaded.encode_pixels(np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\).*\(1, 3, 32, 32\)"):
        small_loaded.encode_pixels(np.zeros((1, 3, 32, 32), np.float32))


def test_fingerprint_is_stable_and_sensitive(small_loaded):
    fp = small_loaded.fingerprint
    assert len(fp) == 64 and fp == small_loaded.fingerprint
    params = convert.map_tree(np.asarray, small_loaded.params)
    assert from_params(SMALL, params).fingerprint == fp
    params["logit_scale"] = params["logit_scale"] + np.float32(1e-3)
    assert from_params(SMALL, params).fingerprint != fp


def test_bucketed_batch_shapes():
    assert [load_mod._bucket(n, 256) for n in (1, 2, 3, 5, 200, 256, 1000)] == [
        1,
        2,
        4,
        8,
        256,
        256,
        256,
    ]

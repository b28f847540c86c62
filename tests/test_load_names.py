"""`jaxclip.load` by catalog name, and hub ids without a network: a cached repo opens, an
uncached one fails at once (not after huggingface_hub's ~25 s of retries) in one line."""

import importlib.util
import socket
import time
from pathlib import Path

import numpy as np
import pytest

import jaxclip
from jaxclip import hub
from jaxclip.models import catalog
from jaxclip.models.load import ModelNotFoundError

ROOT = Path(__file__).resolve().parents[1]


def _closed_port() -> int:
    """A localhost port nothing listens on (connections to it are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_network(monkeypatch, tmp_path):
    """The hub switched on (HF_HUB_OFFLINE unset) but unreachable: its endpoint is a closed
    local port; the hub cache is an empty folder of this test."""
    from huggingface_hub import constants

    for var in hub.OFFLINE_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def _embeddings(model) -> np.ndarray:
    return model.encode_text(["a photo of a cat", "a red square"])


def test_probe_tells_a_listening_port_from_a_closed_one():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert hub.unreachable(f"http://127.0.0.1:{server.getsockname()[1]}") == ""
    why = hub.unreachable(f"http://127.0.0.1:{_closed_port()}")
    assert why.startswith("127.0.0.1:") and "refused" in why.lower()


def test_uncached_hub_id_fails_fast_in_one_line_without_network(no_network):
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError) as e:
        jaxclip.load("owner/name")
    elapsed = time.perf_counter() - start
    message = str(e.value)
    assert elapsed < 2.0, f"took {elapsed:.1f} s"
    assert "\n" not in message
    assert "'owner/name'" in message and "offline or unreachable" in message
    assert "127.0.0.1" in message  # the cause: the endpoint that did not answer
    assert 'jaxclip.load("/path/to/folder")' in message
    assert "local_files_only" not in message  # huggingface_hub's advice is not ours to give


def test_uncached_hub_id_fails_fast_with_hf_hub_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match="HF_HUB_OFFLINE is set") as e:
        jaxclip.load("openai/clip-vit-base-patch32")
    assert time.perf_counter() - start < 2.0
    assert "\n" not in str(e.value)


def test_cached_hub_repo_opens_without_network(no_network, tiny_model):
    """A repo in the hub cache's own layout (refs/main -> snapshots/<commit>/) opens offline."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = no_network / "models--owner--tiny"
    tiny_model.save(repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    start = time.perf_counter()
    model = jaxclip.load("owner/tiny")
    assert model.name == "owner/tiny"
    np.testing.assert_array_equal(_embeddings(model), _embeddings(tiny_model))
    assert time.perf_counter() - start < 60


def test_catalog_names_open_through_the_catalog():
    from jaxclip.models.variants import tiny

    model = jaxclip.load("tiny_random")
    assert model.name == "tiny_random(seed=0)" and model.config == tiny()


def test_mini_not_trained_says_how_to_train_it(monkeypatch, tmp_path):
    monkeypatch.setenv("JAXCLIP_CACHE", str(tmp_path))
    with pytest.raises(catalog.ModelNotTrained) as e:
        jaxclip.load("mini")
    message = str(e.value)
    assert "\n" not in message and "--config.model=mini" in message
    # The experiment it names does train "mini" on first use: its default model is "mini".
    zero_shot = importlib.util.spec_from_file_location("_zs", ROOT / "configs" / "zero_shot.py")
    module = importlib.util.module_from_spec(zero_shot)
    zero_shot.loader.exec_module(module)
    assert "python -m experiments.zero_shot" in message and module.get_config().model == "mini"
    from experiments.models import TRAINED_HERE

    assert "mini" in TRAINED_HERE


def test_mini_opens_the_trained_model(monkeypatch, tmp_path, tiny_model):
    monkeypatch.setenv("JAXCLIP_CACHE", str(tmp_path))
    folder = catalog.models_root() / "run" / "model"
    tiny_model.save(folder)
    catalog.record_trained("mini", folder)
    model = jaxclip.load("mini")
    assert model.name == "mini"  # named by its catalog name, not by a path of this machine
    np.testing.assert_array_equal(_embeddings(model), _embeddings(tiny_model))


def test_a_local_folder_named_like_a_catalog_entry_wins(monkeypatch, tmp_path, tiny_model):
    monkeypatch.chdir(tmp_path)
    tiny_model.save(tmp_path / "mini")
    monkeypatch.setenv("JAXCLIP_CACHE", str(tmp_path / "empty"))
    assert jaxclip.load("mini").name == str((tmp_path / "mini").resolve())

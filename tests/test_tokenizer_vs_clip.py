"""`Tokenizer.openai` against OpenAI's own `clip.tokenize`, difference by difference.

`clip/clip.py` imports pkg_resources (not installed here), so its `tokenize` function is taken
from the file's source and run unchanged, with OpenAI's `SimpleTokenizer` as its `_tokenizer`.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from typing import Union  # clip.tokenize annotates with typing.Union and List

import numpy as np
import pytest
import torch

from jaxclip.models import clip as clip_model
from jaxclip.models.tokenizer import EOT_ID, OPENAI_PAD_ID, Tokenizer

SITE = Path(importlib.util.find_spec("transformers").origin).parents[1]


@pytest.fixture(scope="module")
def clip_tokenize():
    spec = importlib.util.spec_from_file_location(
        "openai_simple_tokenizer", SITE / "clip" / "simple_tokenizer.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = SITE / "clip" / "clip.py"
    fn = next(
        n
        for n in ast.parse(source.read_text()).body
        if isinstance(n, ast.FunctionDef) and n.name == "tokenize"
    )
    ns = {"torch": torch, "Union": Union, "List": list, "_tokenizer": module.SimpleTokenizer()}
    exec(compile(ast.Module([fn], []), str(source), "exec"), ns)
    return ns["tokenize"]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.openai()


def test_padding_is_zero_as_clip(tok, clip_tokenize):
    texts = ["a photo of a dog.", "", "   ", "A\tB\nC", "It’s  &amp;   Ünïcode ΣΑΣ", "ﬁne café"]
    assert tok.pad_token_id == OPENAI_PAD_ID == 0
    np.testing.assert_array_equal(tok(texts), clip_tokenize(texts).numpy())


def test_special_tokens_inside_text_as_clip(tok, clip_tokenize):
    """Glued to punctuation they are plain characters for OpenAI's regex; standalone special."""
    texts = ["x.<|endoftext|>", "a!!!<|startoftext|>", "hello <|endoftext|> world",
             "<|startoftext|>a", "a<|endoftext|>", "<|ENDOFTEXT|>", "!!<|endoftext|>!! <|endoftext|>"]  # fmt: skip
    ref = clip_tokenize(texts).numpy()
    np.testing.assert_array_equal(tok(texts), ref)
    assert ref[0, :4].tolist() == [49406, 343, 13, 27]  # "x", ".<", "|" ... : not 49407
    assert ref[2, :5].tolist() == [49406, 3306, 49407, 1002, 49407]


def test_truncation_is_clips_truncate_true(tok, clip_tokenize):
    """clip.tokenize raises on long texts unless truncate=True; jaxclip always truncates so."""
    texts = ["word " * 100, "x.<|endoftext|> " + "word " * 100, "<|endoftext|>" * 100]
    with pytest.raises(RuntimeError, match="too long for context length 77"):
        clip_tokenize(texts[:1])
    ref = clip_tokenize(texts, truncate=True).numpy()
    np.testing.assert_array_equal(tok(texts), ref)
    assert (ref[:, -1] == EOT_ID).all()


def test_context_length_and_types(clip_tokenize):
    short = Tokenizer.openai(context_length=5)
    texts = ["a cat", "one two three four five"]
    ours, ref = short(texts), clip_tokenize(texts, context_length=5, truncate=True)
    np.testing.assert_array_equal(ours, ref.numpy())
    assert (ours.dtype, ref.dtype) == (np.int32, torch.int64)  # the one remaining difference
    np.testing.assert_array_equal(short("a cat"), clip_tokenize("a cat", context_length=5))


def test_without_ftfy_mojibake_differs(tok, clip_tokenize, monkeypatch):
    """OpenAI always runs ftfy; jaxclip only when it is installed (it is here)."""
    text = ["cafÃ© schÃ¶n"]
    np.testing.assert_array_equal(tok(text), clip_tokenize(text).numpy())
    monkeypatch.setitem(sys.modules, "ftfy", None)  # import ftfy now raises ImportError
    assert not np.array_equal(tok(text), clip_tokenize(text).numpy())


def test_pad_id_cannot_move_the_pooled_position():
    """EOS pooling (first EOT) and the legacy argmax rule (eos_token_id == 2) pick the EOT
    position whether rows are padded with 0 or with EOT (argmax returns the first maximum)."""
    tok0, tok_eot = Tokenizer.openai(), Tokenizer.openai(pad_token_id=EOT_ID)
    texts = ["a photo of a dog.", "", "x.<|endoftext|> y", "word " * 100]
    a, b = tok0(texts), tok_eot(texts)
    first_eot = [row.tolist().index(EOT_ID) for row in a]  # by hand: SOT + tokens, then EOT
    assert first_eot[:2] == [7, 1] and first_eot[3] == 76
    for eos in (EOT_ID, 2):
        assert clip_model.eos_positions(a, eos).tolist() == first_eot
        assert clip_model.eos_positions(b, eos).tolist() == first_eot


def test_pad_id_does_not_change_text_embeddings():
    from jaxclip.models.catalog import _tiny_random

    model = _tiny_random()
    texts = ["a photo of a dog.", "x", "a b c d e f"]
    ctx = model.config.text.context_length
    a = Tokenizer.openai(ctx)(texts)
    b = Tokenizer.openai(ctx, pad_token_id=EOT_ID)(texts)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(model.encode_token_ids(a), model.encode_token_ids(b))


def test_bad_pad_id():
    with pytest.raises(ValueError, match="pad_token_id=49408 is not an id of the vocabulary"):
        Tokenizer.openai(pad_token_id=49408)


@pytest.mark.parametrize("layout,pad", [("open_clip", OPENAI_PAD_ID), ("transformers", EOT_ID)])
def test_loaded_checkpoints_pad_as_their_tokenizer(tmp_path, clip_tokenize, layout, pad):
    """An OpenCLIP folder pads with 0 (open_clip.tokenize); a transformers folder with the pad
    token its tokenizer files name (EOT in the files jaxclip and openai/clip-* write). The
    embeddings cannot change: test_pad_id_does_not_change_text_embeddings."""
    import jaxclip
    from jaxclip.models.catalog import _tiny_random

    model = _tiny_random()
    assert model.tokenizer.pad_token_id == EOT_ID  # jaxclip's own models: unchanged
    model.save(tmp_path, layout=layout)
    loaded = jaxclip.load(tmp_path)
    assert loaded.tokenizer.pad_token_id == pad
    if layout == "transformers":
        from transformers import AutoTokenizer

        assert AutoTokenizer.from_pretrained(tmp_path).pad_token_id == pad
    texts = ["a photo of a dog.", "x.<|endoftext|>"]
    ctx = model.config.text.context_length
    ref = clip_tokenize(texts, context_length=ctx).numpy()
    after_eot = np.arange(ctx) > np.argmax(ref == EOT_ID, axis=1)[:, None]
    np.testing.assert_array_equal(loaded.tokenizer(texts), np.where(after_eot, pad, ref))

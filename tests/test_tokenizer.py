"""The CLIP tokenizer against OpenAI's own `clip/simple_tokenizer.py` (imported by file path)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from jaxclip.models.tokenizer import Tokenizer, clean_text, openai_vocab_and_merges

SITE = Path(importlib.util.find_spec("transformers").origin).parents[1]


@pytest.fixture(scope="module")
def openai_tok():
    path = SITE / "clip" / "simple_tokenizer.py"
    spec = importlib.util.spec_from_file_location("openai_simple_tokenizer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SimpleTokenizer()  # its default BPE file sits beside it


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.openai()


def openai_rows(ref, texts: list[str], context_length: int, pad: int) -> np.ndarray:
    """OpenAI's clip.tokenize(texts, truncate=True), padded with `pad` instead of 0."""
    sot, eot = ref.encoder["<|startoftext|>"], ref.encoder["<|endoftext|>"]
    out = np.full((len(texts), context_length), pad, np.int32)
    for i, text in enumerate(texts):
        ids = [sot, *ref.encode(text), eot]
        if len(ids) > context_length:
            ids = ids[:context_length]
            ids[-1] = eot
        out[i, : len(ids)] = ids
    return out


def varied_strings(n: int = 400, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["a", "photo", "of", "the", "cat", "dog", "Airplane", "TRUCK", "don't", "it's",
             "we'll", "I'M", "they've", "café", "naïve", "résumé", "Straße", "Ünïcödé", "日本語",
             "東京", "한국어", "Привет", "مرحبا", "שלום", "😀", "👍🏽", "🇫🇷", "3.14", "1,000,000",
             "42", "x²", "½", "&amp;", "&lt;b&gt;", "&quot;hi&quot;", "It’s", "“quoted”",
             "ﬁne", "ＡＢＣ", "１２３", "e-mail", "C++", "#hashtag", "@user", "http://x.org/a?b=1",
             "...", "!!!", "???", "--", "(parens)", "[brackets]", "{}", "a\u0301",
             "\u00a0", "\t", "\n", "  ", "can't", "O'Neil", "rock'n'roll", "ÆØÅ", "œuvre",
             "ǅ", "İstanbul", "ς", "ΣΊΣΥΦΟΣ", "ﬀ", "™", "©", "°C", "µm", "\u200b", "…"]  # fmt: skip
    out = ["", " ", "a photo of a cat.", "A PHOTO OF A CAT.", "a\n\nphoto\tof a   cat"]
    while len(out) < n:
        k = int(rng.integers(1, 12)) if rng.random() < 0.9 else int(rng.integers(60, 120))
        seps = [" ", "", " ", ", ", " - ", "  "]
        parts = []
        for _ in range(k):
            parts.append(words[int(rng.integers(len(words)))])
            parts.append(seps[int(rng.integers(len(seps)))])
        out.append("".join(parts))
    return out


def test_known_ids(tok):
    ids = tok(["a photo of a cat."])
    assert ids.dtype == np.int32 and ids.shape == (1, 77)
    assert ids[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 269, 49407]
    assert (ids[0, 8:] == tok.pad_token_id).all()
    assert (tok.context_length, tok.eos_token_id, tok.bos_token_id) == (77, 49407, 49406)


def test_vocab_is_openai_encoder(openai_tok):
    vocab, merges = openai_vocab_and_merges()
    assert vocab == openai_tok.encoder
    assert len(vocab) == 49408 and len(merges) == 48894
    assert dict(zip(merges, range(len(merges)))) == openai_tok.bpe_ranks


def test_matches_openai_on_varied_strings(tok, openai_tok):
    texts = varied_strings()
    assert len(texts) == 400
    ours = tok(texts)
    ref = openai_rows(openai_tok, texts, 77, tok.pad_token_id)
    bad = [t for t, a, b in zip(texts, ours, ref) if not np.array_equal(a, b)]
    assert not bad, f"{len(bad)} strings differ, e.g. {bad[:3]!r}"
    special = ["hi <|endoftext|> there", "<|startoftext|>", "!!!<|endoftext|>", "x.<|endoftext|>"]
    np.testing.assert_array_equal(tok(special), openai_rows(openai_tok, special, 77, 0))
    long_rows = [row for row, t in zip(ours, texts) if len(openai_tok.encode(t)) > 75]
    assert long_rows and all(row[-1] == 49407 for row in long_rows)  # truncation keeps EOS last


def test_cleaning_is_needed_for_parity(tok, openai_tok):
    """transformers' fast tokenizer alone differs on these; with OpenAI's cleaning it does not."""
    texts = ["It’s a ﬁne day &amp; café ＡＢＣ", "&lt;b&gt; bold"]
    raw = np.asarray(tok.hf(texts, padding="max_length", max_length=77)["input_ids"])
    assert not np.array_equal(raw, openai_rows(openai_tok, texts, 77, tok.hf.pad_token_id))
    np.testing.assert_array_equal(tok(texts), openai_rows(openai_tok, texts, 77, tok.pad_token_id))
    assert clean_text("  a &amp;amp; b\n\tc ") == "a & b c"


def test_save_and_reload(tok, tmp_path):
    from transformers import AutoTokenizer

    tok.save(tmp_path)
    again = Tokenizer.from_folder(tmp_path)
    assert (tok.pad_token_id, again.pad_token_id) == (0, 49407)  # the files name EOT as pad
    texts = varied_strings(50, seed=1)
    ours = tok(texts)
    after_eot = np.arange(77) > np.argmax(ours == 49407, axis=1)[:, None]
    np.testing.assert_array_equal(again(texts), np.where(after_eot, 49407, ours))
    np.testing.assert_array_equal(Tokenizer.from_folder(tmp_path, pad_token_id=0)(texts), ours)
    hf = AutoTokenizer.from_pretrained(tmp_path)
    assert hf("a photo of a cat.")["input_ids"] == [49406, 320, 1125, 539, 320, 2368, 269, 49407]
    # from_folder opens the saved class directly (no AutoTokenizer import): the class and the
    # ids AutoTokenizer gives.
    assert type(again.hf) is type(hf)
    np.testing.assert_array_equal(
        np.asarray(hf(texts, padding="max_length", truncation=True, max_length=77)["input_ids"]),
        np.asarray(
            again.hf(texts, padding="max_length", truncation=True, max_length=77)["input_ids"]
        ),
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    assert Tokenizer.from_folder(empty, context_length=16)(["x"]).shape == (1, 16)  # OpenAI's


def test_short_context_and_inputs(tok):
    short = Tokenizer.openai(context_length=5)
    ids = short(["one two three four five six"])
    assert ids.shape == (1, 5) and ids[0, 0] == 49406 and ids[0, -1] == 49407
    assert tok("a cat").shape == (1, 77)  # one string is a list of one
    assert tok([]).shape == (0, 77)
    with pytest.raises(TypeError, match="texts must be strings; got int"):
        tok(["ok", 3])
    with pytest.raises(ValueError, match="context_length=1"):
        Tokenizer.openai(context_length=1)

"""SigLIP 2's text path (Gemma's SentencePiece through transformers' `GemmaTokenizer`) against
big_vision's recipe written out by hand: `lower|tok(length=64, model="gemma", bos="no",
eos="sticky")`, padded with Gemma's `<pad>`. Gemma's own tokenizer can't be downloaded here, so
a small SentencePiece model with Gemma's special ids and settings is trained in the test."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import sentencepiece as spm
from transformers import GemmaTokenizer

from jaxclip.models.siglip_text import SiglipTextTokenizer
from tests.test_siglip_text import ODD, WORDS, varied_strings

PAD, EOS, BOS, UNK = 0, 1, 2, 3  # Gemma's special ids


@pytest.fixture(scope="module")
def gemma_folder(tmp_path_factory):
    """A BPE SentencePiece model laid out like Gemma's (no dummy prefix, identity normalisation,
    byte fallback), and the transformers GemmaTokenizer folder made from it."""
    rng = random.Random(0)
    words = WORDS + ODD
    corpus = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(600)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=buf,
        vocab_size=400,
        hard_vocab_limit=False,
        pad_id=PAD,
        eos_id=EOS,
        bos_id=BOS,
        unk_id=UNK,
        pad_piece="<pad>",
        eos_piece="<eos>",
        bos_piece="<bos>",
        unk_piece="<unk>",
        model_type="bpe",
        byte_fallback=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        normalization_rule_name="identity",
        character_coverage=1.0,
        minloglevel=2,
    )
    folder = tmp_path_factory.mktemp("gemma")
    (folder / "tokenizer.model").write_bytes(buf.getvalue())
    GemmaTokenizer.from_pretrained(str(folder)).save_pretrained(folder)
    return folder


def big_vision_ids(sp, texts, length):
    """lower -> SentencePiece pieces (no BOS) -> cut to length - 1 -> EOS -> pad with <pad>."""
    out = np.full((len(texts), length), PAD, np.int32)
    for i, text in enumerate(texts):
        row = [*sp.encode(text.lower())[: length - 1], EOS]
        out[i, : len(row)] = row
    return out


@pytest.mark.parametrize("length", [64, 16])
def test_gemma_path_equals_big_vision_recipe(gemma_folder, length):
    texts = varied_strings()
    sp = spm.SentencePieceProcessor(model_file=str(gemma_folder / "tokenizer.model"))
    hf = GemmaTokenizer.from_pretrained(str(gemma_folder))
    tok = SiglipTextTokenizer(hf, context_length=length)
    assert not tok.is_siglip and tok.lowercase  # SigLIP 2: lower-case here, no canonicalising
    ours = tok(texts)
    assert ours.shape == (200, length) and ours.dtype == np.int32
    np.testing.assert_array_equal(ours, big_vision_ids(sp, texts, length))
    # What the test exercises: truncation (EOS kept last), padding with 0, no BOS anywhere,
    # punctuation kept (unlike SigLIP's canonicalisation), upper case folded.
    assert any(len(sp.encode(t.lower())) >= length for t in texts)
    assert (ours == BOS).sum() == 0 and (ours == PAD).any()
    full = [i for i, t in enumerate(texts) if len(sp.encode(t.lower())) >= length]
    assert (ours[full, -1] == EOS).all()
    assert not np.array_equal(tok(["a photo, of a cat!"]), tok(["a photo of a cat"]))
    np.testing.assert_array_equal(tok(["A PHOTO OF A CAT"]), tok(["a photo of a cat"]))


def test_gemma_folder_opens_through_from_folder(gemma_folder):
    tok = SiglipTextTokenizer.from_folder(gemma_folder, context_length=16)
    assert tok is not None and (tok.pad_token_id, tok.eos_token_id) == (PAD, EOS)
    sp = spm.SentencePieceProcessor(model_file=str(gemma_folder / "tokenizer.model"))
    texts = varied_strings(20, seed=3)
    np.testing.assert_array_equal(tok(texts), big_vision_ids(sp, texts, 16))

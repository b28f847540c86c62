"""SigLIP text and image handling against transformers' SiglipTokenizer / SiglipImageProcessor
and an independent SentencePiece reference (a small model trained here)."""

from __future__ import annotations

import io
import random
import re
import string

import numpy as np
import pytest
import sentencepiece as spm
from transformers import SiglipTokenizer

from jaxclip.data.preprocess import preprocess_device, preprocess_host_batch
from jaxclip.models.load import siglip_preprocess
from jaxclip.models.siglip_text import SiglipTextTokenizer

WORDS = (
    "the quick brown fox jumps over lazy dog photo of a cat red blue green square circle "
    "triangle big small many two three four image picture drawing sketch painting close up"
).split()
ODD = ["Über", "naïve", "café", "x-ray", "it's", "_under_score", "(paren)", "Hello,", "WORLD!"]


@pytest.fixture(scope="module")
def spm_file(tmp_path_factory):
    """A unigram SentencePiece model with SigLIP's special ids: <pad> 0, </s> 1, <unk> 2."""
    rng = random.Random(0)
    corpus = [
        " ".join(rng.choice(WORDS + ODD) for _ in range(rng.randint(3, 12))) for _ in range(600)
    ]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=buf,
        vocab_size=120,
        hard_vocab_limit=False,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        model_type="unigram",
        character_coverage=1.0,
        minloglevel=2,
    )
    path = tmp_path_factory.mktemp("spm") / "spiece.model"
    path.write_bytes(buf.getvalue())
    return path


def varied_strings(n=200, seed=1):
    """Mixed case, punctuation, underscores, unicode, odd whitespace, empty and > 64 tokens."""
    rng = random.Random(seed)
    out = ["", " ", "A", "x_y", "tab\tnew\nline", "日本 語", "!!!", "a" * 300]
    while len(out) < n:
        words = [rng.choice(WORDS + ODD) for _ in range(rng.choice([1, 3, 8, 20, 70]))]
        words = [
            w.upper() if rng.random() < 0.2 else w.title() if rng.random() < 0.2 else w
            for w in words
        ]
        sep = rng.choice([" ", "  ", " \t", ", ", ". "])
        text = sep.join(words) + rng.choice(["", ".", "!", "?", " :)", " ..."])
        out.append(text)
    return out


def reference_ids(sp, texts, length):
    """big_vision/transformers recipe by hand: canonicalise, SentencePiece, </s>, pad with </s>."""
    out = np.full((len(texts), length), 1, np.int32)
    for i, t in enumerate(texts):
        t = t.lower().translate(str.maketrans("", "", string.punctuation))
        t = re.sub(r"\s+", " ", t).strip()
        row = [*sp.encode(t)[: length - 1], 1]
        out[i, : len(row)] = row
    return out


@pytest.mark.parametrize("length", [64, 16])
def test_tokenizer_matches_reference_and_transformers(spm_file, length):
    texts = varied_strings()
    hf = SiglipTokenizer(str(spm_file))
    ours = SiglipTextTokenizer(hf, context_length=length)(texts)
    assert ours.shape == (200, length) and ours.dtype == np.int32
    sp = spm.SentencePieceProcessor(model_file=str(spm_file))
    np.testing.assert_array_equal(ours, reference_ids(sp, texts, length))
    want = hf(texts, padding="max_length", truncation=True, max_length=length)["input_ids"]
    np.testing.assert_array_equal(ours, np.asarray(want))
    # the strings exercise truncation, padding and canonicalisation
    assert (ours[:, -1] != 1).sum() == 0  # every row ends in </s> (EOS or padding)
    assert any(len(sp.encode(t)) >= length for t in texts)
    assert np.array_equal(ours[texts.index("x_y")], ours[texts.index("x_y")])
    ids_upper = SiglipTextTokenizer(hf, length)(["A PHOTO, OF A CAT!"])
    np.testing.assert_array_equal(ids_upper, SiglipTextTokenizer(hf, length)(["a photo of a cat"]))


def test_loaded_folder_tokenizes_and_encodes(spm_file, tmp_path):
    import jaxclip
    from tests.test_siglip import hf_siglip

    model = hf_siglip("w48")  # text length 16, vocabulary 120 >= the 87 pieces
    model.save_pretrained(tmp_path)
    SiglipTokenizer(str(spm_file), model_max_length=16).save_pretrained(tmp_path)
    loaded = jaxclip.load(tmp_path)
    texts = varied_strings(12, seed=5)
    sp = spm.SentencePieceProcessor(model_file=str(spm_file))
    ids = reference_ids(sp, texts, 16)
    np.testing.assert_array_equal(loaded.token_ids(texts), ids)
    np.testing.assert_allclose(loaded.encode_text(texts), loaded.encode_token_ids(ids), atol=1e-6)
    assert loaded.preprocess == siglip_preprocess(24)


@pytest.mark.parametrize("h,w", [(24, 24), (40, 17), (13, 90), (300, 200)])
def test_preprocess_matches_siglip_image_processor(h, w):
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    rng = np.random.default_rng(h * w)
    images = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    proc = SiglipImageProcessorPil(size={"height": 24, "width": 24})
    want = proc(list(images), return_tensors="np")["pixel_values"].transpose(0, 2, 3, 1)
    cfg = siglip_preprocess(24)
    host = preprocess_host_batch(images, cfg)
    np.testing.assert_allclose(host, want, atol=1e-5)
    device = np.asarray(preprocess_device(images, cfg))
    if w >= h:  # Pillow 13 resizes horizontally first here, as the device path does
        np.testing.assert_allclose(device, host, atol=1e-5)
    else:  # it may go vertically first: the uint8 rounding between passes differs
        assert np.abs(device - host).mean() < 0.01
    assert cfg.mean == cfg.std == (0.5, 0.5, 0.5) and not cfg.crop

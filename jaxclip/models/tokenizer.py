"""The CLIP BPE tokenizer (Radford et al. 2021; Sennrich et al. 2016 byte-pair encoding).

`Tokenizer` wraps a transformers tokenizer: the one a checkpoint folder ships, or, for OpenAI /
OpenCLIP files and folders without one, a `CLIPTokenizer` built offline from OpenAI's
`bpe_simple_vocab_16e6.txt.gz` (shipped in `jaxclip/models/assets/`, MIT licence). The
vocabulary is derived exactly as OpenAI's `clip/simple_tokenizer.py` does: the 256
`bytes_to_unicode` characters, the same with "</w>", one entry per merge, then
<|startoftext|> (49406) and <|endoftext|> (49407).

Text is cleaned as OpenAI cleans it before BPE (`ftfy.fix_text` when ftfy is installed, HTML
unescaped twice, whitespace runs collapsed, stripped); transformers' fast tokenizer only
normalises NFC, so without this step strings like "It’s" or "&amp;" tokenize differently from
what the models were trained on. Rows are [SOT] tokens [EOT] padded with the tokenizer's pad id
(EOT for CLIP) to `context_length`; longer texts are cut so that EOT stays the last token
(OpenAI's `tokenize(..., truncate=True)`).

One known difference from OpenAI's tokenizer remains: a literal "<|endoftext|>" written inside
the text directly after punctuation ("!!!<|endoftext|>") is one special token here (transformers
extracts special tokens first) but plain characters for OpenAI's regex. Standalone it is the
special token for both.
"""

from __future__ import annotations

import functools
import gzip
import html
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).parent / "assets"
BPE_PATH = ASSETS / "bpe_simple_vocab_16e6.txt.gz"
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """OpenAI's reversible byte -> printable unicode character map (GPT-2 byte-level BPE)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


@functools.lru_cache(maxsize=2)
def openai_vocab_and_merges(
    bpe_path: str = str(BPE_PATH),
) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """(token -> id, merges) exactly as `clip/simple_tokenizer.py` builds them (49408 tokens)."""
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = [tuple(m.split()) for m in lines[1 : 49152 - 256 - 2 + 1]]
    chars = list(bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {tok: i for i, tok in enumerate(vocab)}, merges  # type: ignore[return-value]


def _fix_text(text: str) -> str:
    try:
        import ftfy
    except ImportError:  # ftfy only repairs mojibake / quotes / ligatures; optional.
        return text
    return ftfy.fix_text(text)


def clean_text(text: str) -> str:
    """OpenAI's cleaning: ftfy, html.unescape twice, collapse whitespace, strip, lower-case.

    Python's `str.lower` (OpenAI's) differs from the tokenizers library's lower-casing, e.g. on
    a word-final capital sigma, so lower-casing happens here.
    """
    text = html.unescape(html.unescape(_fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


class Tokenizer:
    """Texts -> int32 (N, context_length) CLIP token ids.

    Attributes:
      hf: the wrapped transformers tokenizer.
      context_length: row length (77 for CLIP).
      eos_token_id, bos_token_id, pad_token_id, vocab_size.
      clean: apply OpenAI's text cleaning first (see the module docstring).
    """

    def __init__(self, hf_tokenizer, context_length: int = 77, clean: bool = True):
        if context_length < 2:
            raise ValueError(f"context_length={context_length} must be >= 2 (SOT and EOT)")
        if hf_tokenizer.pad_token is None:
            hf_tokenizer.pad_token = hf_tokenizer.eos_token
        self.hf = hf_tokenizer
        self.context_length = int(context_length)
        self.clean = clean

    @classmethod
    def openai(cls, context_length: int = 77) -> Tokenizer:
        """The OpenAI CLIP tokenizer, built offline from the shipped BPE vocabulary."""
        from transformers import CLIPTokenizer

        vocab, merges = openai_vocab_and_merges()
        hf = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=context_length)
        return cls(hf, context_length)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike, context_length: int = 77) -> Tokenizer:
        """The tokenizer saved in a transformers folder, or the OpenAI one if there is none."""
        folder = Path(folder)
        if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
            return cls.openai(context_length)
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(str(folder)), context_length)

    @property
    def eos_token_id(self) -> int:
        return int(self.hf.eos_token_id)

    @property
    def bos_token_id(self) -> int:
        return int(self.hf.bos_token_id)

    @property
    def pad_token_id(self) -> int:
        return int(self.hf.pad_token_id)

    @property
    def vocab_size(self) -> int:
        return len(self.hf)

    def __call__(self, texts: Sequence[str] | str) -> np.ndarray:
        """Tokenizes texts (a single string counts as a list of one) -> int32 (N, context_length)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"texts must be strings; got {bad[0]}")
        if not texts:
            return np.zeros((0, self.context_length), np.int32)
        if self.clean:
            texts = [clean_text(t) for t in texts]
        ids = self.hf(
            texts,
            padding="max_length",
            truncation=True,
            max_length=self.context_length,
            return_attention_mask=False,
        )["input_ids"]
        return np.asarray(ids, dtype=np.int32)

    def save(self, folder: str | os.PathLike) -> None:
        """Writes the transformers tokenizer files into `folder` (loadable by AutoTokenizer)."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(str(folder))

    def __repr__(self) -> str:
        return (
            f"Tokenizer({type(self.hf).__name__}, vocab_size={self.vocab_size}, "
            f"context_length={self.context_length})"
        )


def trim_to_eos(input_ids: np.ndarray, eos_token_id: int, multiple: int = 1) -> np.ndarray:
    """input_ids[..., :T], T = 1 + the last position of any row's first EOS (rounded up to a
    multiple of `multiple`, at most the row length).

    Exact for the embeddings: the text tower is causal and pools at the first EOS, so positions
    after it never reach the text embedding (only `hidden_states` get shorter). Rounding T up
    keeps the number of distinct shapes, hence jit compilations, small. Rows must hold an EOS
    (the tokenizer keeps it when it truncates).
    """
    ids = np.asarray(input_ids)
    has = ids == eos_token_id
    if ids.ndim < 1 or not np.all(has.any(axis=-1)):
        raise ValueError(f"every row of input_ids {ids.shape} needs an EOS ({eos_token_id})")
    t = int(has.argmax(axis=-1).max()) + 1
    t = min(ids.shape[-1], -(-t // multiple) * multiple)
    return ids[..., :t]

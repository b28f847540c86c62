"""The CLIP BPE tokenizer (Radford et al. 2021; Sennrich et al. 2016 byte-pair encoding).

`Tokenizer` wraps a transformers tokenizer: the one a checkpoint folder ships, or, for OpenAI /
OpenCLIP files and folders without one, a `CLIPTokenizer` built offline from OpenAI's
`bpe_simple_vocab_16e6.txt.gz` (shipped in `jaxclip/models/assets/`, MIT licence). The
vocabulary is derived exactly as OpenAI's `clip/simple_tokenizer.py` does: the 256
`bytes_to_unicode` characters, the same with "</w>", one entry per merge, then
<|startoftext|> (49406) and <|endoftext|> (49407).

Text is cleaned as OpenAI cleans it before BPE (`ftfy.fix_text` when ftfy is installed, HTML
unescaped twice, whitespace runs collapsed, stripped, lower-cased); transformers' fast tokenizer
only normalises NFC, so without this step strings like "It’s" or "&amp;" tokenize differently
from what the models were trained on. "<|startoftext|>" / "<|endoftext|>" written in the text
are special tokens only where OpenAI's pre-tokenisation pattern matches them on their own
(transformers would also take them glued to punctuation, "x.<|endoftext|>"). Rows are
[SOT] tokens [EOT], cut so that EOT stays the last token when too long, then padded to
`context_length` with the checkpoint's pad id: 0 for OpenAI and OpenCLIP checkpoints (as
`clip.tokenize` and `open_clip.tokenize`), the pad token of the tokenizer files for
transformers folders (EOT, 49407, for openai/clip-* on the hub), EOT for jaxclip's own models
(`tiny_random`, models trained here: their saved tokenizer files say EOT), and the model's
pad id for text towers without a causal mask. For causal towers pooled at the first EOT (or
at argmax(ids), transformers' legacy rule, which is the first EOT for either pad id) the pad
id cannot reach the embedding.

Compared with OpenAI's `clip.tokenize` (`Tokenizer.openai()`; tests/test_tokenizer_vs_clip.py
checks each point against it):
  * ids, padding (0), special tokens inside the text, cleaning and lower-casing, any
    `context_length`: equal;
  * too long texts: `clip.tokenize` raises unless truncate=True; here they are always cut as
    with truncate=True (the first context_length ids, the last one replaced by EOT);
  * without ftfy installed (optional here, required by OpenAI's package) mojibake such as
    "cafÃ©" is not repaired, so such strings differ;
  * the result is an int32 numpy array, not an int64 torch tensor.
"""

from __future__ import annotations

import functools
import gzip
import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import regex

ASSETS = Path(__file__).parent / "assets"
BPE_PATH = ASSETS / "bpe_simple_vocab_16e6.txt.gz"
# OpenAI's pre-tokenisation pattern (`clip/simple_tokenizer.py`).
_OPENAI_PAT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
OPENAI_PAD_ID = 0
"""The pad id of `clip.tokenize` and `open_clip.tokenize` (token 0, "!", after EOT)."""
EOT_ID = 49407
"""<|endoftext|>: also the pad id of transformers' CLIP tokenizer files and of jaxclip's own
models (trained and saved with it, so their token rows stay as they were)."""
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")
# tokenizer_config.json classes opened directly: for these AutoTokenizer resolves to the same
# class (for any model type), and importing only it is ~3.5 s faster than AutoTokenizer's
# import on a 2-core CPU (which pulls in torch where it is installed).
_DIRECT_CLASSES = ("CLIPTokenizer",)


def open_hf_tokenizer(folder: Path) -> Any:
    """The transformers tokenizer saved in `folder`: its tokenizer_config.json class directly
    where that class is in _DIRECT_CLASSES and no remote code is named, else AutoTokenizer."""
    import transformers

    config_file = folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    name = str(config.get("tokenizer_class") or "").removesuffix("Fast")
    if name in _DIRECT_CLASSES and "auto_map" not in config:
        return getattr(transformers, name).from_pretrained(str(folder))
    return transformers.AutoTokenizer.from_pretrained(str(folder))


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
      pad_token_id: the id after EOT up to `context_length` (module docstring: the checkpoint's
        convention); only rows are padded with it, the wrapped tokenizer never sees it.
      eos_token_id, bos_token_id, vocab_size.
      clean: apply OpenAI's text cleaning first (see the module docstring).
    """

    def __init__(
        self,
        hf_tokenizer,
        context_length: int = 77,
        clean: bool = True,
        pad_token_id: int | None = None,
    ):
        if context_length < 2:
            raise ValueError(f"context_length={context_length} must be >= 2 (SOT and EOT)")
        if hf_tokenizer.pad_token is None:
            hf_tokenizer.pad_token = hf_tokenizer.eos_token
        self.hf = hf_tokenizer
        self.context_length = int(context_length)
        self.clean = clean
        pad = hf_tokenizer.pad_token_id if pad_token_id is None else pad_token_id
        if not 0 <= int(pad) < len(hf_tokenizer):
            raise ValueError(
                f"pad_token_id={pad} is not an id of the vocabulary [0, {len(hf_tokenizer)})"
            )
        self.pad_token_id = int(pad)

    @classmethod
    def openai(cls, context_length: int = 77, pad_token_id: int = OPENAI_PAD_ID) -> Tokenizer:
        """The OpenAI CLIP tokenizer, built offline from the shipped BPE vocabulary; rows padded
        with 0 as `clip.tokenize` and `open_clip.tokenize` pad (or `pad_token_id`)."""
        from transformers import CLIPTokenizer

        vocab, merges = openai_vocab_and_merges()
        hf = CLIPTokenizer(vocab=dict(vocab), merges=list(merges), model_max_length=context_length)
        return cls(hf, context_length, pad_token_id=pad_token_id)

    @classmethod
    def from_folder(
        cls,
        folder: str | os.PathLike,
        context_length: int = 77,
        pad_token_id: int | None = None,
    ) -> Tokenizer:
        """The tokenizer saved in a transformers folder, padding with the pad token its files
        name (tokenizer_config.json / special_tokens_map.json; EOT if none), or the OpenAI one
        (pad 0) if there is none; `pad_token_id` overrides either."""
        folder = Path(folder)
        if not any((folder / f).is_file() for f in _TOKENIZER_FILES):
            pad = OPENAI_PAD_ID if pad_token_id is None else pad_token_id
            return cls.openai(context_length, pad)
        return cls(open_hf_tokenizer(folder), context_length, pad_token_id=pad_token_id)

    @property
    def eos_token_id(self) -> int:
        return int(self.hf.eos_token_id)

    @property
    def bos_token_id(self) -> int:
        return int(self.hf.bos_token_id)

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
        rows = self.hf(
            texts, truncation=True, max_length=self.context_length, return_attention_mask=False
        )["input_ids"]
        if self._clip_specials():
            rows = [self._openai_row(t) if "<|" in t else r for t, r in zip(texts, rows)]
        ids = np.full((len(rows), self.context_length), self.pad_token_id, np.int32)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
        return ids

    def _clip_specials(self) -> bool:
        return (self.hf.bos_token, self.hf.eos_token) == ("<|startoftext|>", "<|endoftext|>")

    def _openai_row(self, text: str) -> list[int]:
        """[SOT] ids [EOT] with "<|startoftext|>" / "<|endoftext|>" special only where OpenAI's
        pattern matches them as a token of their own (glued to punctuation, "x.<|endoftext|>",
        its punctuation-run class takes ".<|" and they are plain text); truncated as
        `clip.tokenize(..., truncate=True)`: the first context_length ids, the last one EOT."""
        special = {"<|startoftext|>": self.bos_token_id, "<|endoftext|>": self.eos_token_id}
        out, start = [self.bos_token_id], 0

        def plain(segment: str) -> list[int]:
            if not segment.strip():
                return []
            enc = self.hf(
                segment,
                add_special_tokens=False,
                split_special_tokens=True,
                truncation=True,
                max_length=self.context_length,  # the row keeps at most that many anyway
            )
            return list(enc["input_ids"])

        for m in _OPENAI_PAT.finditer(text):
            if m.group().lower() in special:
                out += [*plain(text[start : m.start()]), special[m.group().lower()]]
                start = m.end()
        out += [*plain(text[start:]), self.eos_token_id]
        if len(out) > self.context_length:
            out = out[: self.context_length]
            out[-1] = self.eos_token_id
        return out

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

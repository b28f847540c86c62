"""SigLIP's text handling: SentencePiece tokenizers, 64-token rows, the checkpoints' casing.

How it differs from CLIP's (`jaxclip.models.tokenizer`), and why each difference matters:

* **Vocabulary.** SigLIP uses a SentencePiece model (`spiece.model`, 32000 pieces trained on
  C4 English; transformers' `SiglipTokenizer`); SigLIP 2 uses Gemma's SentencePiece
  (`tokenizer.model`, 256000 pieces). CLIP uses byte-level BPE (49408).
* **No start token; EOS = padding.** SigLIP rows are `tokens </s> </s> ...` with `</s>` = 1
  as both EOS and padding (SigLIP 2: tokens, `<eos>` = 1, then `<pad>` = 0). CLIP rows are
  `<|startoftext|> tokens <|endoftext|>` padded with its pad id.
* **Always padded to exactly `context_length` (64).** The text tower has no attention mask and
  pools the *last* position, so the padding is part of the input: a row must be padded exactly
  as in training, to 64 tokens (transformers' own examples insist on `padding="max_length"`;
  shorter padding is the classic cause of "SigLIP performs badly" reports). CLIP pools at
  the EOS under a causal mask, so its padding never matters (and `LoadedCLIP.token_ids` cuts it).
  Longer texts are cut to 63 tokens and the EOS kept (big_vision's `eos="sticky"`).
* **Casing and punctuation (SigLIP).** transformers' `SiglipTokenizer` canonicalises every text
  first (`do_lower_case=True`): lower-case, remove every `string.punctuation` character, collapse
  whitespace, strip — the canonicalisation big_vision applies to its zero-shot class names and
  prompts (`prompt_engineering.canonicalize_text`). One difference from big_vision's function:
  big_vision first turns "_" into a space, transformers deletes it with the other punctuation
  ("a_b" -> "ab" here, "a b" in big_vision); jaxclip follows transformers (the parity reference).
  CLIP instead keeps punctuation, lower-cases and fixes mojibake/HTML (`clean_text`).
* **Casing (SigLIP 2).** SigLIP 2 was trained on lower-cased text (big_vision's
  `lower|tok(length=64, model="gemma", bos="no", eos="sticky")`); the Gemma tokenizer does not
  lower-case by itself, so this wrapper does (Python's `str.lower`), adds no BOS, appends EOS and
  pads with Gemma's `<pad>`, independently of the tokenizer files' add_bos/add_eos settings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SIGLIP_CONTEXT_LENGTH = 64
_FILES = ("spiece.model", "tokenizer.model", "tokenizer.json")


class SiglipTextTokenizer:
    """Texts -> int32 (N, context_length) SigLIP token ids, padded to the full length.

    Attributes:
      hf: the wrapped transformers tokenizer (`SiglipTokenizer`, or a Gemma tokenizer).
      context_length: row length (64).
      lowercase: lower-case texts before tokenizing (SigLIP 2's recipe; `SiglipTokenizer`
        already canonicalises, see the module docstring).
    """

    def __init__(self, hf_tokenizer, context_length: int = SIGLIP_CONTEXT_LENGTH, lowercase=None):
        if context_length < 2:
            raise ValueError(f"context_length={context_length} must be >= 2 (a token and EOS)")
        from transformers import SiglipTokenizer

        self.hf = hf_tokenizer
        self.context_length = int(context_length)
        self.is_siglip = isinstance(hf_tokenizer, SiglipTokenizer)
        self.lowercase = (not self.is_siglip) if lowercase is None else bool(lowercase)
        if hf_tokenizer.eos_token_id is None:
            raise ValueError(f"{type(hf_tokenizer).__name__} has no EOS token")

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, context_length: int = SIGLIP_CONTEXT_LENGTH
    ) -> SiglipTextTokenizer | None:
        """The tokenizer a SigLIP folder ships (`open_hf_tokenizer`), or None when it has none."""
        folder = Path(folder)
        if not any((folder / f).is_file() for f in _FILES):
            return None
        from jaxclip.models.tokenizer import open_hf_tokenizer

        return cls(open_hf_tokenizer(folder), context_length)

    @property
    def eos_token_id(self) -> int:
        return int(self.hf.eos_token_id)

    @property
    def pad_token_id(self) -> int:
        pad = self.hf.pad_token_id
        return int(self.eos_token_id if pad is None else pad)

    @property
    def bos_token_id(self) -> int:
        """SigLIP adds no start token; the pad id stands in (kept for `Tokenizer` parity)."""
        return self.pad_token_id

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
        n, length = len(texts), self.context_length
        if self.lowercase:
            texts = [t.lower() for t in texts]
        if not texts:
            return np.zeros((0, length), np.int32)
        if self.is_siglip:
            ids = self.hf(
                texts,
                padding="max_length",
                truncation=True,
                max_length=length,
                return_attention_mask=False,
            )["input_ids"]
            return np.asarray(ids, dtype=np.int32).reshape(n, length)
        out = np.full((n, length), self.pad_token_id, np.int32)
        pieces = self.hf(texts, add_special_tokens=False, return_attention_mask=False)
        for i, row in enumerate(pieces["input_ids"]):
            row = [*list(row)[: length - 1], self.eos_token_id]
            out[i, : len(row)] = row
        return out

    def save(self, folder: str | os.PathLike) -> None:
        """Writes the transformers tokenizer files into `folder` (loadable by AutoTokenizer)."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        self.hf.save_pretrained(str(folder))

    def __repr__(self) -> str:
        return (
            f"SiglipTextTokenizer({type(self.hf).__name__}, vocab_size={self.vocab_size}, "
            f"context_length={self.context_length}, lowercase={self.lowercase})"
        )

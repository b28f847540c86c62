"""jaxclip: dissect CLIP vision-language models in JAX/Flax.

`jaxclip.load(name_or_path)` opens a CLIP checkpoint (HF hub id or folder, OpenAI / OpenCLIP
file) as Flax params with a tokenizer and encoders. The analyses (`jaxclip.analysis`,
`jaxclip.probes`, `jaxclip.losses`) are pure functions of embeddings and need no model.
"""

from jaxclip.version import __version__

__all__ = ["__version__", "load"]


def __getattr__(name: str):
    # Lazy: `import jaxclip.analysis...` should not pay for transformers and the model code.
    if name == "load":
        from jaxclip.models.load import load

        return load
    raise AttributeError(f"module 'jaxclip' has no attribute {name!r}")

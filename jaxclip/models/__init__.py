"""CLIP models: the Flax module, named sizes, checkpoint conversion, loading and saving.

Open a checkpoint with `jaxclip.load` (jaxclip/models/load.py); the submodules are

    clip.py      the Flax `CLIP` (ViT, ResNet or ConvNeXt image tower + text tower)
    variants.py  architecture dataclasses, named sizes, HF config.json conversion
    convert.py   checkpoint formats <-> our parameter tree (pure numpy)
    load.py      `load`, `LoadedCLIP` (the encoders), `save`, `from_params`
    tokenizer.py the CLIP BPE tokenizer, offline from the shipped OpenAI vocabulary
    open_clip.py OpenCLIP names, hub repos and config options
    resnet.py, convnext.py   the non-ViT image towers
    catalog.py   the short model names configs use

Nothing is imported here, so `jaxclip.models.load` stays the module (not the function) and
importing one submodule does not pull in the others.
"""

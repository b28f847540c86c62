"""The jaxclip version (part of every feature-cache key)."""

__version__ = "0.1.0"

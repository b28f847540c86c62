"""Plot helpers: an atomic PNG save.

Library modules never pick a matplotlib backend: matplotlib falls back to its headless Agg
backend where there is no display, and `MPLBACKEND` chooses another.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib.pyplot as plt

from jaxclip import atomic


def save_figure(fig: plt.Figure, workdir: str | os.PathLike, name: str, dpi: int = 120) -> str:
    """Saves `fig` as `workdir/name` (PNG) atomically, closes it, and returns `name`.

    The returned relative name is what `Report.figure` links to.
    """
    if not name.endswith(".png"):
        name += ".png"
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    atomic.write_bytes(Path(workdir) / name, buf.getvalue())
    return name

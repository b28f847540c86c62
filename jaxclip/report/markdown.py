"""Human-readable reports: a `Report` collects headings, text, tables and figures into report.md.

Tables are built from the same dicts that go to results.json, so the numbers a reader sees are
the numbers stored.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jaxclip import atomic


def _cell(value: Any, floatfmt: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0):
        value = float(value)
        if math.isnan(value):
            return "nan"
        return format(value, floatfmt)
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    floatfmt: str = ".2f",
) -> str:
    """Renders `rows` (dicts sharing keys) as a GitHub markdown table.

    Args:
      rows: one dict per row.
      columns: the keys to show, in order (default: the first row's keys).
      floatfmt: format spec for floats, e.g. ".2f" or ".4g".
    """
    if not rows:
        return "_(no rows)_\n"
    columns = list(columns or rows[0].keys())
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row.get(c), floatfmt) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def text_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str] | None = None,
    floatfmt: str = ".2f",
) -> str:
    """Renders `rows` as a plain-text table with aligned columns (for the console); cells as in
    `markdown_table`, numbers right-aligned."""
    if not rows:
        return "(no rows)\n"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c), floatfmt) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows)
        for c in columns
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *map(line, cells)]) + "\n"


class Report:
    """An ordered markdown document written to `workdir/report.md`.

    Example:
      report = Report("Zero-shot on shapes")
      report.section("Accuracy")
      report.table([{"template": "a photo of a {}.", "top1": 91.2}])
      report.figure("confusion.png", "Confusion matrix")
      report.write(workdir)
    """

    def __init__(self, title: str):
        self.title = title
        self._parts: list[str] = [f"# {title}\n"]

    def section(self, title: str, level: int = 2) -> Report:
        self._parts.append(f"{'#' * level} {title}\n")
        return self

    def text(self, markdown: str) -> Report:
        self._parts.append(markdown.rstrip() + "\n")
        return self

    def table(
        self,
        rows: Sequence[Mapping[str, Any]],
        columns: Sequence[str] | None = None,
        floatfmt: str = ".2f",
        caption: str | None = None,
    ) -> Report:
        if caption:
            self._parts.append(f"*{caption}*\n")
        self._parts.append(markdown_table(rows, columns, floatfmt))
        return self

    def figure(self, relpath: str | os.PathLike, caption: str) -> Report:
        self._parts.append(f"![{caption}]({os.fspath(relpath)})\n\n*{caption}*\n")
        return self

    def extend(self, other: Report, level_shift: int = 1) -> Report:
        """Appends another report's body (its title becomes a heading one level down)."""
        shift = "#" * level_shift
        for part in other._parts:
            self._parts.append(shift + part if part.startswith("#") else part)
        return self

    def markdown(self) -> str:
        return "\n".join(self._parts)

    def write(self, workdir: str | os.PathLike, name: str = "report.md") -> Path:
        path = Path(workdir) / name
        atomic.write_text(path, self.markdown())
        return path

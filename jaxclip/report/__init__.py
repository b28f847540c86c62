"""Reports: results.json + metrics.csv (records.py), report.md (markdown.py), PNGs (plots.py)."""

from jaxclip.report.markdown import Report, markdown_table, text_table
from jaxclip.report.plots import save_figure
from jaxclip.report.records import flatten_metrics, to_jsonable, write_results

__all__ = [
    "Report",
    "flatten_metrics",
    "markdown_table",
    "save_figure",
    "text_table",
    "to_jsonable",
    "write_results",
]

"""Matplotlib for the run files: the Agg backend (no display) and PNGs written whole."""

from __future__ import annotations

import os
from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, imported on first use (it takes a second)."""
    import matplotlib  # heavy: matplotlib, only to draw a chart

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # heavy: matplotlib, only to draw a chart

    return plt


def save_png(figure, path: str | Path, dpi: int = 110) -> Path:
    """Save and close ``figure``; written beside ``path`` and renamed, so a kill leaves no torn PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.tmp")
    try:
        figure.savefig(partial, dpi=dpi, format="png")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
        pyplot().close(figure)
    return path

"""One look for every figure: how a figure is made (matplotlib's object API, no pyplot state),
its size and fonts, and how it is saved (no date or version inside: the same runs give the same
bytes)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pifexp.errors import PifexpError
from pifexp.experiments.report.runs import CellRun
from pifexp.files import write_atomic

FIGURES_DIR = "figures"
TITLE_SIZE = 9
LEGEND_SIZE = 7
# one set of fonts and line widths for every figure of a report
RC_PARAMS = {
    "font.size": 8, "axes.titlesize": TITLE_SIZE, "axes.labelsize": 8,
    "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": LEGEND_SIZE,
    "axes.spines.top": False, "axes.spines.right": False, "lines.linewidth": 1.2,
}  # fmt: skip


def style() -> Any:
    """A context in which figures are drawn with RC_PARAMS (matplotlib.rc_context)."""
    import matplotlib

    return matplotlib.rc_context(RC_PARAMS)


def new_figure(figures: Mapping[str, Any], width: float = 1.0, height: float = 1.0) -> Any:
    """A matplotlib Figure of `width` x `height` panels (reporting.figures.panel_size_inches)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError as error:
        raise PifexpError(
            f"figures need matplotlib ({error}); install it or set reporting.figures.enabled=false"
        ) from None
    panel_width, panel_height = figures["panel_size_inches"]
    return Figure(figsize=(panel_width * width, panel_height * height))


def title(run: CellRun) -> str:
    return f"{run.name} ({run.setting_value('model', 'architecture') or run.model})"


def save(figure: Any, path: Path, figures: Mapping[str, Any]) -> Path:
    # no software version or date in the file: the same runs give the same bytes
    metadata = {"Software": None} if figures["format"] == "png" else None
    return write_atomic(
        path,
        lambda tmp: figure.savefig(
            tmp, format=figures["format"], dpi=int(figures["dpi"]), metadata=metadata
        ),
    )

"""Figures of the attribution maps (nilearn, over the MNI152 template): per method, one row per
run (the baseline and PIF arms side by side, one above the other), under the cohort's effect map
where it has one: a glass brain and orthogonal slices of the arm's mean |map| with the trained
weights, and the glass brain of the same maps under re-initialised weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np

from pifexp.experiments.apply.attribution import METHODS
from pifexp.files import write_atomic

WIDTHS = (1.0, 1.25, 1.0)  # glass brain, slices, glass brain of the random weights
ROW_HEIGHT_INCHES, WIDTH_INCHES, DPI = 2.3, 15.0, 120
COLORMAP = "inferno"


@dataclass(frozen=True)
class FigureRow:
    """One row of a figure: a title and the maps it shows (None: the panel stays empty)."""

    title: str
    trained: nib.Nifti1Image
    random: nib.Nifti1Image | None


def method_figure(
    path: Path,
    method: str,
    rows: Sequence[FigureRow],
    effect: nib.Nifti1Image | None,
    threshold: float,
    caption: str,
) -> Path:
    """The figure of one method, as a PNG with no date or version inside (same maps, same bytes)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from nilearn import plotting

    effect_row = [FigureRow("Effect map |class 1 - class 0|", effect, None)] if effect else []
    shown = effect_row + list(rows)
    # where the slices cut: the largest blob above half the peak of the effect map (or of the
    # first map); nilearn's default threshold finds nothing in a map with a flat top
    centre = _scaled(effect if effect is not None else rows[0].trained)
    coords = plotting.find_xyz_cut_coords(centre, activation_threshold=0.5)
    figure = Figure(figsize=(WIDTH_INCHES, ROW_HEIGHT_INCHES * len(shown) + 0.5))
    grid = figure.add_gridspec(len(shown), len(WIDTHS), width_ratios=WIDTHS, wspace=0.02)
    for index, row in enumerate(shown):
        trained = _scaled(row.trained)
        common = {"threshold": threshold, "vmax": 1.0, "colorbar": False, "cmap": COLORMAP}
        plotting.plot_glass_brain(
            trained, axes=figure.add_subplot(grid[index, 0]), display_mode="ortho",
            plot_abs=True, title=row.title, **common,
        )  # fmt: skip
        plotting.plot_stat_map(
            trained, bg_img=_template(), axes=figure.add_subplot(grid[index, 1]),
            display_mode="ortho", cut_coords=coords, draw_cross=False, symmetric_cbar=False,
            vmin=0.0, **common,
        )  # fmt: skip
        if row.random is not None:
            plotting.plot_glass_brain(
                _scaled(row.random), axes=figure.add_subplot(grid[index, 2]),
                display_mode="ortho", plot_abs=True, title="random weights", **common,
            )  # fmt: skip
    figure.suptitle(f"{METHODS[method]}: {caption}", fontsize=10)
    return write_atomic(
        path,
        lambda tmp: figure.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None}),
    )


def _scaled(image: nib.Nifti1Image) -> nib.Nifti1Image:
    """|map| divided by its maximum: the threshold is a share of each map's own peak."""
    data = np.abs(np.asarray(image.get_fdata(dtype=np.float32)))
    peak = float(data.max())
    return nib.Nifti1Image(data / peak if peak > 0 else data, image.affine)


@cache
def _template() -> nib.Nifti1Image:
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=1)

"""Group means of attribution maps, as NIfTI on the network's input grid: per seed, for each class
and for all its images; per arm (the run's model), over every seed's images; on request also on
the grid of nilearn's 1 mm MNI152 template.

Each map is divided by its largest |value| before it is averaged (every image weighs the same);
mean_<group> keeps the sign, mean_abs_<group> averages |map|.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.datasets import load_mni152_template
from nilearn.image import resample_to_img

from pifexp.data.grid import Grid
from pifexp.experiments.apply.finished import FinishedRun
from pifexp.experiments.apply.scores import grid_image, read_volume, write_nifti
from pifexp.files import write_json_atomic

TRAINED, RANDOM = "trained", "random"  # the network's own weights; re-initialised ones
WEIGHTS = (TRAINED, RANDOM)
ALL = "all"
KINDS = ("mean", "mean_abs")
COUNTS_FILE = "means.json"  # images per group, for the means over seeds
MNI152_SUFFIX = "_mni152"


def mean_path(folder: Path, group: str, absolute: bool = True, mni152: bool = False) -> Path:
    kind = "mean_abs" if absolute else "mean"
    return Path(folder) / f"{kind}_{group}{MNI152_SUFFIX if mni152 else ''}.nii.gz"


def group_means(
    folder: Path, maps: np.ndarray, labels: np.ndarray, classes: Sequence[str], grid: Grid
) -> None:
    """The means of normalized maps (N, D, H, W) of one seed: all images and each class present
    (images without a label count in `all` only)."""
    groups = {ALL: np.ones(len(maps), dtype=bool)}
    groups.update({classes[label]: labels == label for label in (0, 1) if (labels == label).any()})
    for group, members in groups.items():
        chosen = maps[members]
        write_nifti(mean_path(folder, group, False), grid_image(chosen.mean(axis=0), grid))
        write_nifti(mean_path(folder, group), grid_image(np.abs(chosen).mean(axis=0), grid))
    write_json_atomic(Path(folder) / COUNTS_FILE, {g: int(m.sum()) for g, m in groups.items()})


def arm_means(
    method_folder: Path, seed_folders: list[Path], run: FinishedRun, mni152: bool, fresh: bool
) -> None:
    """The means over every seed (each seed's means weighted by its images), for trained and
    random weights; made again only where a seed is new or a file is missing."""
    for weights in WEIGHTS:
        target = Path(method_folder) / weights
        counts = [
            json.loads((folder / weights / COUNTS_FILE).read_text()) for folder in seed_folders
        ]
        groups = sorted({group for count in counts for group in count})
        wanted = [
            mean_path(target, g, a, m)
            for g in groups
            for a in (False, True)
            for m in ((False, True) if mni152 else (False,))
        ]
        if not fresh and all(path.is_file() for path in wanted):
            continue
        for group in groups:
            members = [
                (folder, count[group])
                for folder, count in zip(seed_folders, counts, strict=True)
                if group in count
            ]
            total = sum(n for _, n in members)
            for absolute in (False, True):
                summed = sum(
                    n * read_volume(mean_path(folder / weights, group, absolute))
                    for folder, n in members
                )
                image = grid_image(summed / total, run.grid)
                write_nifti(mean_path(target, group, absolute), image)
                if mni152:
                    write_nifti(mean_path(target, group, absolute, True), on_mni152(image))


def on_mni152(image: nib.Nifti1Image) -> nib.Nifti1Image:
    """The map resampled (nilearn) to the grid of the 1 mm MNI152 template."""
    return resample_to_img(
        image, _template(), interpolation="continuous", force_resample=True, copy_header=True
    )


@cache
def _template() -> nib.Nifti1Image:
    return load_mni152_template(resolution=1)

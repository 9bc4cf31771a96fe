"""Scores of attribution maps: how well they find a known signal, and whether they depend on the
network's weights at all.

- Against a cohort's effect map (effect_map.nii.gz: the expected class-1 image minus the class-0
  image), within the MNI152 brain: the signal is |effect| above a share of its maximum; per map,
  the voxelwise ROC AUC of |attribution| against the signal (scikit-learn) and the share of the
  |attribution| mass that lies inside it.
- The model randomisation test of Adebayo et al. (2018): Spearman's rank correlation between the
  |map| of the trained network and the |map| of the same image under re-initialised weights. A
  method whose maps barely change does not explain the network.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
from nilearn.image import resample_to_img
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from pifexp.data.grid import Grid, mni_brain_mask
from pifexp.errors import PifexpError
from pifexp.files import write_atomic


def grid_image(volume: np.ndarray, grid: Grid) -> nib.Nifti1Image:
    return nib.Nifti1Image(np.asarray(volume, dtype=np.float32), grid.affine)


def write_nifti(path: Path, image: nib.Nifti1Image) -> Path:
    """A .nii.gz written atomically, with no time stamp in its gzip header: the same map gives the
    same bytes, so a rerun changes nothing."""
    data = gzip.compress(image.to_bytes(), compresslevel=6, mtime=0)
    return write_atomic(path, lambda tmp: tmp.write_bytes(data))


def read_volume(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).get_fdata(dtype=np.float32))


def on_grid(image: nib.Nifti1Image | Path, grid: Grid, interpolation: str) -> np.ndarray:
    """An image resampled to the grid (nilearn; nothing changes where it is on the grid)."""
    target = nib.Nifti1Image(np.zeros(grid.shape, dtype=np.int8), grid.affine)
    try:
        resampled = resample_to_img(
            image, target, interpolation=interpolation, force_resample=True, copy_header=True
        )
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as error:
        raise PifexpError(f"{image} cannot be resampled to the network's grid ({error})") from None
    return np.asarray(resampled.get_fdata(dtype=np.float32))


def brain_mask(grid: Grid, resolution_mm: int) -> np.ndarray:
    """nilearn's MNI152 brain mask on the grid: where the scores look."""
    return on_grid(mni_brain_mask(resolution_mm), grid, "nearest") > 0


def signal_mask(effect_map: Path, grid: Grid, share: float, brain: np.ndarray) -> np.ndarray:
    """Brain voxels where |effect| exceeds `share` of its largest value."""
    effect = np.abs(on_grid(Path(effect_map), grid, "continuous"))
    signal = (effect > share * effect.max()) & brain
    if not signal.any() or signal[brain].all():
        raise PifexpError(
            f"{effect_map}: no brain voxel (or every one) has |effect| above {share} of its "
            "maximum (signal_threshold); the maps cannot be scored against it"
        )
    return signal


def signal_scores(maps: np.ndarray, signal: np.ndarray, brain: np.ndarray
                  ) -> dict[str, np.ndarray]:  # fmt: skip
    """Per map of maps (N, D, H, W): ROC AUC of |attribution| against the signal, and the share
    of the |attribution| mass inside the signal, over brain voxels."""
    scores = np.abs(maps[:, brain]).T  # (voxels, N): one column per map
    truth = np.repeat(signal[brain][:, None], scores.shape[1], axis=1).astype(int)
    # one call: each column is scored as a label of its own (a single column is plain binary)
    auc = (
        np.atleast_1d(roc_auc_score(truth, scores, average=None))
        if scores.shape[1] > 1
        else np.array([roc_auc_score(truth[:, 0], scores[:, 0])])
    )
    total = scores.sum(axis=0)
    inside = scores[signal[brain]].sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mass = np.where(total > 0, inside / total, np.nan)
    return {"auc": auc.astype(float), "mass_inside": mass.astype(float)}


def rank_agreement(first: np.ndarray, second: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation of |first[i]| and |second[i]| over brain voxels, per map (NaN
    where a map is constant)."""
    ranks_first = rankdata(np.abs(first[:, brain]), axis=1)
    ranks_second = rankdata(np.abs(second[:, brain]), axis=1)
    a = ranks_first - ranks_first.mean(axis=1, keepdims=True)
    b = ranks_second - ranks_second.mean(axis=1, keepdims=True)
    spread = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(spread > 0, (a * b).sum(axis=1) / spread, np.nan)


def normalized(maps: np.ndarray) -> np.ndarray:
    """Each map divided by its largest |value|, so that every image weighs the same in a group
    mean (an all-zero map stays zero)."""
    peak = np.abs(maps).reshape(len(maps), -1).max(axis=1)
    scale = np.where(peak > 0, peak, 1.0)
    return maps / scale.reshape(-1, *([1] * (maps.ndim - 1)))

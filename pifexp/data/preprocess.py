"""Preprocessing one volume for the network: resample to the task's grid, brain mask, intensity
normalization, stored dtype (task.preprocess in the config)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
from nilearn.image import resample_img, resample_to_img

from pifexp.data.grid import Grid, mni_brain_mask, target_grid
from pifexp.errors import ConfigError, PifexpError

MASKS = (None, "mni152")
NORMALIZATIONS = ("none", "max", "zscore")
INTERPOLATIONS = ("continuous", "linear", "nearest")
DTYPES = ("float32", "float16")
# the mask is a label image: resampled without mixing values
MASK_INTERPOLATION = "nearest"


@dataclass(frozen=True)
class PreprocessSpec:
    """Everything that decides the cached volumes (task.preprocess, task.input_shape and the data
    source's grid settings), checked; `as_dict()` is hashed into the cache key."""

    mask: str | None
    crop: tuple[tuple[float, float], ...] | None  # [[x0, x1], [y0, y1], [z0, z1]] mm
    target_shape: tuple[int, int, int]
    interpolation: str
    normalize: str
    dtype: str
    resample_to: str | None
    mni_resolution: int
    affine_atol_mm: float

    def __post_init__(self) -> None:
        for key, choices in (
            ("mask", MASKS),
            ("normalize", NORMALIZATIONS),
            ("interpolation", INTERPOLATIONS),
            ("dtype", DTYPES),
        ):
            if getattr(self, key) not in choices:
                raise ConfigError(
                    f"task.preprocess.{key}={getattr(self, key)!r} must be one of "
                    f"{', '.join('null' if c is None else c for c in choices)}"
                )
        shape = self.target_shape
        if len(shape) != 3 or min(shape) < 1:
            raise ConfigError(f"task.input_shape={list(shape)} must be three positive voxel counts")

    def as_dict(self) -> dict[str, Any]:
        """The settings as plain data (JSON: tuples become lists), for the cache key and meta."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, eq=False)
class PreprocessPlan:
    """How every image of one cohort becomes a volume of the target grid."""

    grid: Grid
    mask: np.ndarray | None  # boolean, on the target grid
    interpolation: str
    normalize: str
    dtype: str


def make_plan(spec: PreprocessSpec, reference: Grid) -> PreprocessPlan:
    """The target grid (reference field of view or crop, at task.input_shape) and its mask."""
    grid = target_grid(reference, spec.target_shape, spec.crop)
    mask = None
    if spec.mask == "mni152":
        target = nib.Nifti1Image(np.zeros(grid.shape, dtype=np.int8), grid.affine)
        resampled = resample_to_img(
            mni_brain_mask(spec.mni_resolution),
            target,
            interpolation=MASK_INTERPOLATION,
            force_resample=True,
            copy_header=True,
        )
        mask = np.asarray(resampled.dataobj) > 0
        if not mask.any():
            raise PifexpError(
                f"the MNI152 brain mask does not overlap the target grid ({grid.describe()}); "
                f"check task.preprocess.crop and the images' affines"
            )
    return PreprocessPlan(grid, mask, spec.interpolation, spec.normalize, spec.dtype)


def preprocess_volume(
    data: np.ndarray, affine: np.ndarray, plan: PreprocessPlan, where: str
) -> np.ndarray:
    """One image's voxels on the target grid: resampled, masked, normalized, in the stored dtype."""
    resampled = resample_img(
        nib.Nifti1Image(data, affine),
        target_affine=plan.grid.affine,
        target_shape=plan.grid.shape,
        interpolation=plan.interpolation,
        copy=False,
        force_resample=False,  # an image already on the target grid is used as it is
        copy_header=True,
    )
    volume = np.asarray(resampled.get_fdata(dtype=np.float32))
    inside = plan.mask if plan.mask is not None else volume != 0
    if plan.mask is not None:
        volume = np.where(plan.mask, volume, np.float32(0))
    if plan.normalize == "max":
        peak = volume.max()
        if peak <= 0:
            raise PifexpError(f"{where}: no positive voxel on the target grid to divide by")
        volume = volume / peak
    elif plan.normalize == "zscore":
        values = volume[inside]
        spread = values.std() if values.size else 0.0
        if spread == 0:
            raise PifexpError(f"{where}: constant inside the mask; cannot z-score")
        volume = np.where(inside, (volume - values.mean()) / spread, np.float32(0))
    return volume.astype(plan.dtype, copy=False)

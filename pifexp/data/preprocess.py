"""Preprocessing one volume for the network: resample to the task's grid, brain mask, intensity
normalization, stored dtype (task.preprocess in the config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import nibabel as nib
import numpy as np
from nilearn.image import resample_img, resample_to_img
from omegaconf import DictConfig, OmegaConf

from pifexp.data.grid import Grid, mni_brain_mask, target_grid
from pifexp.errors import ConfigError, PifexpError

MASKS = (None, "mni152")
NORMALIZATIONS = ("none", "max", "zscore")
INTERPOLATIONS = ("continuous", "linear", "nearest")
DTYPES = ("float32", "float16")
# the mask is a label image: resampled without mixing values
MASK_INTERPOLATION = "nearest"


def preprocess_settings(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Everything that decides the cached volumes, as one plain dict (also hashed into the cache
    key): task.preprocess, task.input_shape and the data source's grid settings."""
    task, data = cfg["task"], cfg["data"]
    preprocess = _plain(task["preprocess"])
    settings = {
        "mask": preprocess["mask"],
        "crop": preprocess["crop"],
        "target_shape": [int(n) for n in task["input_shape"]],
        "interpolation": preprocess["interpolation"],
        "normalize": preprocess["normalize"],
        "dtype": preprocess["dtype"],
        "resample_to": data["resample_to"],
        "mni_resolution": int(data["mni_resolution"]),
        "affine_atol_mm": float(data["check"]["affine_atol_mm"]),
    }
    validate_settings(settings)
    return settings


def validate_settings(settings: Mapping[str, Any]) -> None:
    for key, choices in (
        ("mask", MASKS),
        ("normalize", NORMALIZATIONS),
        ("interpolation", INTERPOLATIONS),
        ("dtype", DTYPES),
    ):
        if settings[key] not in choices:
            raise ConfigError(
                f"task.preprocess.{key}={settings[key]!r} must be one of "
                f"{', '.join('null' if c is None else c for c in choices)}"
            )
    shape = settings["target_shape"]
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"task.input_shape={shape} must be three positive voxel counts")


@dataclass(frozen=True, eq=False)
class PreprocessPlan:
    """How every image of one cohort becomes a volume of the target grid."""

    grid: Grid
    mask: np.ndarray | None  # boolean, on the target grid
    interpolation: str
    normalize: str
    dtype: str


def make_plan(settings: Mapping[str, Any], reference: Grid) -> PreprocessPlan:
    """The target grid (reference field of view or crop, at task.input_shape) and its mask."""
    validate_settings(settings)
    grid = target_grid(reference, settings["target_shape"], settings["crop"])
    mask = None
    if settings["mask"] == "mni152":
        target = nib.Nifti1Image(np.zeros(grid.shape, dtype=np.int8), grid.affine)
        resampled = resample_to_img(
            mni_brain_mask(settings["mni_resolution"]),
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
    return PreprocessPlan(
        grid, mask, settings["interpolation"], settings["normalize"], settings["dtype"]
    )


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


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node

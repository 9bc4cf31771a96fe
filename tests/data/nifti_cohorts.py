"""Tiny seeded NIfTI images for the data tests.

The grid is 12x14x12 voxels of 16 mm, placed so that its field of view covers the MNI152 brain
(x -72..72, y -107..73, z -72..82 mm), as a real MNI-normalized image's does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

TINY_SHAPE = (12, 14, 12)
VOXEL_MM = 16.0
FIRST_VOXEL_MM = (-88.0, -121.0, -83.0)  # centre of voxel (0, 0, 0) in RAS
TARGET_SHAPE = (6, 7, 6)


def tiny_affine(
    shape: Sequence[int] = TINY_SHAPE, voxel_mm: float = VOXEL_MM, orientation: str = "RAS"
) -> np.ndarray:
    """RAS, or LAS as FSL's MNI152 grid (x runs right to left), over the same field of view."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = FIRST_VOXEL_MM
    if orientation == "LAS":
        affine[0, 0] = -voxel_mm
        affine[0, 3] = FIRST_VOXEL_MM[0] + voxel_mm * (shape[0] - 1)
    return affine


def tiny_volume(seed: int, shape: Sequence[int] = TINY_SHAPE) -> np.ndarray:
    """A bright ellipsoid ('brain') on a dark background with seeded noise, all positive."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    inside = sum(axis**2 for axis in grid) < 0.8
    noise = rng.uniform(0.0, 0.2, size=shape)
    return (inside * (1.0 + rng.uniform(0, 1)) + noise).astype(np.float32)


def write_image(
    path: Path, data: np.ndarray, affine: np.ndarray | None = None, image_class=nib.Nifti1Image
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image_class(data, tiny_affine(data.shape) if affine is None else affine), path)
    return path

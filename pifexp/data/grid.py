"""Voxel grids (shape + affine): groups of equal grids, MNI reference grids, the target grid."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.affines import apply_affine, voxel_sizes
from nilearn.datasets import load_mni152_brain_mask

from pifexp.errors import PifexpError

# the voxel grid's field of view reaches half a voxel beyond the first and last voxel centres
HALF_VOXEL = 0.5
RESAMPLE_CHOICES = ("cohort", "mni")


@dataclass(frozen=True, eq=False)
class Grid:
    """A 3D voxel grid: its shape and the affine from voxel indices to world (MNI) millimetres."""

    shape: tuple[int, int, int]
    affine: np.ndarray

    @property
    def voxel_size(self) -> tuple[float, float, float]:
        return tuple(float(size) for size in voxel_sizes(self.affine))

    @property
    def orientation(self) -> str:
        """Axis codes, e.g. 'RAS' or 'LAS' (FSL's MNI152 grid)."""
        return "".join(nib.aff2axcodes(self.affine))

    def same_as(self, other: Grid, atol_mm: float) -> bool:
        return self.shape == other.shape and bool(
            np.allclose(self.affine, other.affine, rtol=0.0, atol=atol_mm)
        )

    def describe(self) -> str:
        shape = "x".join(map(str, self.shape))
        size = "x".join(f"{s:g}" for s in self.voxel_size)
        return f"{shape} voxels of {size} mm, {self.orientation}"

    def to_json(self) -> dict:
        return {"shape": list(self.shape), "affine": self.affine.tolist()}

    @classmethod
    def from_json(cls, data: dict) -> Grid:
        return cls(tuple(int(n) for n in data["shape"]), np.asarray(data["affine"], dtype=float))

    @classmethod
    def of_image(cls, image: nib.spatialimages.SpatialImage) -> Grid:
        return cls(tuple(int(n) for n in image.shape[:3]), np.asarray(image.affine, dtype=float))


def world_box(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """The world (mm) bounding box of the grid's field of view: lowest and highest corner."""
    corners = np.array(
        [
            [
                -HALF_VOXEL if low else n - HALF_VOXEL
                for low, n in zip(pick, grid.shape, strict=True)
            ]
            for pick in np.ndindex(2, 2, 2)
        ]
    )
    world = apply_affine(grid.affine, corners)
    return world.min(axis=0), world.max(axis=0)


@cache
def _mni_mask(resolution_mm: int) -> nib.Nifti1Image:
    return load_mni152_brain_mask(resolution=resolution_mm)


def mni_brain_mask(resolution_mm: int) -> nib.Nifti1Image:
    """The MNI152 brain mask that nilearn ships (no download)."""
    return _mni_mask(int(resolution_mm))


def mni_grid(resolution_mm: int) -> Grid:
    """nilearn's MNI152 grid (197x233x189 at 1 mm)."""
    return Grid.of_image(mni_brain_mask(resolution_mm))


def mni_brain_box(resolution_mm: int) -> tuple[np.ndarray, np.ndarray]:
    """World bounding box of the MNI152 brain (voxel centres inside the mask)."""
    mask = mni_brain_mask(resolution_mm)
    inside = np.argwhere(np.asarray(mask.dataobj) > 0)
    world = apply_affine(mask.affine, np.stack([inside.min(axis=0), inside.max(axis=0)]))
    return world.min(axis=0), world.max(axis=0)


def box_shortfall_mm(grid: Grid, box: tuple[np.ndarray, np.ndarray]) -> float:
    """How far (mm) the grid's field of view falls short of covering the box (0: it covers)."""
    low, high = world_box(grid)
    return float(max(np.max(low - box[0]), np.max(box[1] - high), 0.0))


def group_grids(grids: Sequence[Grid], atol_mm: float) -> list[tuple[Grid, list[int]]]:
    """Grids that agree within atol_mm, each with the positions of its members, largest first."""
    groups: list[tuple[Grid, list[int]]] = []
    for position, grid in enumerate(grids):
        match = next((members for first, members in groups if first.same_as(grid, atol_mm)), None)
        if match is None:
            groups.append((grid, [position]))
        else:
            match.append(position)
    # stable sort: among equally large groups the first seen wins
    return sorted(groups, key=lambda group: -len(group[1]))


def reference_grid(
    grids: Sequence[Grid],
    row_names: Sequence[str],
    resample_to: str | None,
    atol_mm: float,
    mni_resolution_mm: int,
) -> Grid:
    """The grid the cohort is preprocessed from.

    resample_to: None (every image must share one grid), 'cohort' (the most common grid), 'mni'
    (nilearn's MNI152 grid) or the path of a NIfTI file whose grid is the reference.
    """
    groups = group_grids(grids, atol_mm)
    if resample_to is None:
        if len(groups) > 1:
            cohort, _ = groups[0]
            other, members = groups[1]
            what = "shape" if other.shape != cohort.shape else "affine"
            raise PifexpError(
                f"{row_names[members[0]]}: {what} differs from the cohort's grid "
                f"({other.describe()} vs {cohort.describe()}; {len(grids) - len(groups[0][1])} "
                f"image(s) differ); set data.resample_to=cohort or mni to resample them"
            )
        return groups[0][0]
    if resample_to == "cohort":
        return groups[0][0]
    if resample_to == "mni":
        return mni_grid(mni_resolution_mm)
    reference = Path(resample_to).expanduser()
    try:
        return Grid.of_image(nib.load(reference))
    except (OSError, nib.filebasedimages.ImageFileError) as error:
        raise PifexpError(
            f"data.resample_to={resample_to!r} is neither {' nor '.join(RESAMPLE_CHOICES)} nor a "
            f"readable NIfTI file ({error})"
        ) from None


def target_grid(
    reference: Grid, shape: Sequence[int], crop_mm: Sequence[Sequence[float]] | None
) -> Grid:
    """The grid of the preprocessed volumes: the reference's field of view (or the crop box, in
    world mm) divided into `shape` voxels, in the reference grid's orientation.

    This is a zoom when the shapes differ (e.g. 0.5 from 1 mm to about 2 mm) and the identity when
    they agree and nothing is cropped.
    """
    low = np.full(3, -HALF_VOXEL)
    high = np.asarray(reference.shape, dtype=float) - HALF_VOXEL
    if crop_mm is not None:
        box = np.asarray(crop_mm, dtype=float)
        if box.shape != (3, 2) or np.any(box[:, 1] <= box[:, 0]):
            raise PifexpError(
                f"task.preprocess.crop={box.tolist()} must be [[xmin, xmax], [ymin, ymax], "
                f"[zmin, zmax]] in mm with min < max"
            )
        corners = np.array(
            [[box[axis, pick[axis]] for axis in range(3)] for pick in np.ndindex(2, 2, 2)]
        )
        voxels = apply_affine(np.linalg.inv(reference.affine), corners)
        low, high = voxels.min(axis=0), voxels.max(axis=0)
    target_shape = np.asarray(shape, dtype=int)
    step = (high - low) / target_shape
    scale = np.eye(4)
    scale[:3, :3] = np.diag(step)
    scale[:3, 3] = low + step * HALF_VOXEL
    return Grid(tuple(int(n) for n in target_shape), reference.affine @ scale)


def left_right_axis(affine: np.ndarray) -> int:
    """The voxel axis that runs left-right (world x in RAS), whatever the grid's orientation."""
    orientation = nib.orientations.io_orientation(np.asarray(affine, dtype=float))
    world_x = np.flatnonzero(orientation[:, 0] == 0)
    if world_x.size != 1:
        raise PifexpError(
            f"no voxel axis runs left-right in the affine {np.asarray(affine).tolist()}"
        )
    return int(world_x[0])

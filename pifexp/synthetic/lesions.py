"""White-matter lesions: drawn per subject, painted into its T1 image, or spread as the expected
lesion load of a class's average subject (for the effect map)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from pifexp.synthetic.anatomy import PARTIAL_VOLUME_MIDPOINT, Anatomy

# a ball's coordinate along any axis has variance radius^2 / 5: the Gaussian that spreads
# expected lesion load has this standard deviation
BALL_SD_PER_RADIUS = 1.0 / np.sqrt(5.0)


@dataclass(frozen=True, eq=False)
class Lesion:
    center_mm: np.ndarray  # (3,) world
    axes: np.ndarray  # (3, 3): rows are the unit directions of the semi-axes
    radii_mm: np.ndarray  # (3,) semi-axes
    contrast: float  # share of the way from white matter to CSF intensity


def draw_lesions(
    rng: np.random.Generator, anatomy: Anatomy, lesion_cfg: Mapping[str, Any], count_mean: float
) -> list[Lesion]:
    """A negative-binomial number of lesions, placed by location share on the candidate white
    matter, with log-normal size, elongation (periventricular ones point away from the ventricles)
    and contrast."""
    if count_mean <= 0:
        return []
    dispersion = float(lesion_cfg["count_dispersion"])
    count = int(rng.negative_binomial(dispersion, dispersion / (dispersion + count_mean)))
    locations = lesion_cfg["locations"]
    names = list(locations)
    shares = np.array([float(locations[n]["share"]) for n in names])
    per_location = rng.multinomial(count, shares / shares.sum())
    lesions: list[Lesion] = []
    for name, k in zip(names, per_location, strict=True):
        lesions.extend(_draw_at(rng, anatomy, lesion_cfg, name, int(k)))
    return lesions


def _draw_at(
    rng: np.random.Generator,
    anatomy: Anatomy,
    lesion_cfg: Mapping[str, Any],
    name: str,
    k: int,
) -> list[Lesion]:
    """k lesions at one location: centres, sizes, elongations, contrasts and directions, drawn
    in this order."""
    candidates = np.asarray(anatomy.maps[f"candidates:{name}"]).ravel()
    if k == 0 or candidates.sum() <= 0:
        return []
    grid, voxel_mm = anatomy.grid, anatomy.voxel_mm
    flat = rng.choice(candidates.size, size=k, p=candidates / candidates.sum())
    voxels = np.stack(np.unravel_index(flat, grid.shape), axis=1).astype(float)
    voxels += rng.uniform(-0.5, 0.5, voxels.shape)
    centers = voxels * voxel_mm + grid.affine[:3, 3]
    radius = np.exp(
        rng.normal(
            np.log(float(lesion_cfg["radius_median_mm"])), float(lesion_cfg["radius_sigma"]), k
        )
    )
    elongation_range = lesion_cfg["locations"][name]["elongation"]
    elongation = rng.uniform(*(float(v) for v in elongation_range), size=k)
    contrast = rng.uniform(*(float(v) for v in lesion_cfg["contrast"]), size=k)
    directions = rng.standard_normal((k, 3))
    if name == "periventricular":
        outward = ventricle_normals(anatomy, voxels)
        directions = np.where(
            np.linalg.norm(outward, axis=1, keepdims=True) > 0, outward, directions
        )
    lesions = []
    for i in range(k):
        long_axis = elongation[i] ** (2.0 / 3.0)  # keeps the volume of the radius's ball
        radii = radius[i] * np.array([long_axis, 1 / np.sqrt(long_axis), 1 / np.sqrt(long_axis)])
        lesions.append(Lesion(centers[i], _frame(directions[i]), radii, float(contrast[i])))
    return lesions


def ventricle_normals(anatomy: Anatomy, voxels: np.ndarray) -> np.ndarray:
    """Direction in which the distance to the ventricles grows, at (fractional) voxel positions."""
    distance = anatomy.maps["ventricle_distance"]
    normals = np.zeros_like(voxels)
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = 1.0
        ahead = ndimage.map_coordinates(distance, (voxels + step).T, order=1, mode="nearest")
        behind = ndimage.map_coordinates(distance, (voxels - step).T, order=1, mode="nearest")
        normals[:, axis] = ahead - behind
    return normals


def _frame(direction: np.ndarray) -> np.ndarray:
    """Orthonormal rows: the unit direction and two unit vectors perpendicular to it."""
    first = direction / np.linalg.norm(direction)
    helper = np.eye(3)[np.argmin(np.abs(first))]
    second = np.cross(first, helper)
    second /= np.linalg.norm(second)
    return np.stack([first, second, np.cross(first, second)])


def lesion_intensity(tissue: Mapping[str, float], contrast: float) -> np.float32:
    """T1 of a lesion of this contrast: that share of the way from white matter to CSF."""
    return np.float32(tissue["wm"] - contrast * (tissue["wm"] - tissue["csf"]))


def paint_lesion(t1: np.ndarray, lesion_map: np.ndarray, lesion: Lesion, anatomy: Anatomy) -> None:
    """Draw one soft-edged ellipsoid into t1 and lesion_map (in place), within its bounding box."""
    grid = anatomy.grid
    voxel_mm = anatomy.voxel_mm
    reach = float(lesion.radii_mm.max()) + voxel_mm
    origin = grid.affine[:3, 3]
    low = np.maximum(np.floor((lesion.center_mm - reach - origin) / voxel_mm).astype(int), 0)
    high = np.minimum(
        np.ceil((lesion.center_mm + reach - origin) / voxel_mm).astype(int) + 1, grid.shape
    )
    if np.any(high <= low):
        return
    box = tuple(slice(lo, hi) for lo, hi in zip(low, high, strict=True))
    offsets = [
        (origin[a] + voxel_mm * np.arange(low[a], high[a]) - lesion.center_mm[a]).reshape(
            [-1 if b == a else 1 for b in range(3)]
        )
        for a in range(3)
    ]
    scaled = sum(
        (sum(lesion.axes[k, a] * offsets[a] for a in range(3)) / lesion.radii_mm[k]) ** 2
        for k in range(3)
    )
    outside_mm = (np.sqrt(scaled) - 1.0) * lesion.radii_mm.min()
    share = (
        np.clip(PARTIAL_VOLUME_MIDPOINT - outside_mm / voxel_mm, 0.0, 1.0)
        * anatomy.maps["brain"][box]
    )
    # a lesion smaller than a voxel would get a whole ramp's worth: keep its true volume instead
    painted_mm3 = float(share.sum()) * voxel_mm**3
    true_mm3 = 4.0 / 3.0 * np.pi * float(np.prod(lesion.radii_mm))
    if painted_mm3 > true_mm3:
        share *= np.float32(true_mm3 / painted_mm3)
    intensity = lesion_intensity(anatomy.tissue_intensity, lesion.contrast)
    t1[box] += share * (intensity - t1[box])
    lesion_map[box] = np.maximum(lesion_map[box], share)


def expected_lesions(
    anatomy: Anatomy, task: Mapping[str, Any], label: int, count_mean: float
) -> tuple[np.ndarray | None, float]:
    """Expected lesion share per voxel of a class's average subject, and the mean contrast."""
    if not task.get("lesions") or count_mean <= 0:
        return None, 0.0
    lesion_cfg = task["lesions"]["patients" if label == 1 else "controls"]
    locations = lesion_cfg["locations"]
    shares = {name: float(loc["share"]) for name, loc in locations.items()}
    total_share = sum(shares.values())
    median, sigma = float(lesion_cfg["radius_median_mm"]), float(lesion_cfg["radius_sigma"])
    # E[volume] of a ball with log-normal radius: 4/3 pi median^3 exp(9 sigma^2 / 2)
    mean_volume_mm3 = 4.0 / 3.0 * np.pi * median**3 * np.exp(4.5 * sigma**2)
    voxel_mm3 = anatomy.voxel_mm**3
    load = np.zeros(anatomy.grid.shape, dtype=np.float32)
    for name, share in shares.items():
        candidates = np.asarray(anatomy.maps[f"candidates:{name}"])
        if share <= 0 or candidates.sum() <= 0:
            continue
        load += (
            candidates
            / candidates.sum()
            * (count_mean * share / total_share * mean_volume_mm3 / voxel_mm3)
        )
    load = ndimage.gaussian_filter(load, sigma=median * BALL_SD_PER_RADIUS / anatomy.voxel_mm)
    return load, float(np.mean([float(v) for v in lesion_cfg["contrast"]]))

"""The MNI152 anatomy that synthetic subjects are drawn from, brought onto a cohort's grid.

Built once per cohort from the 2009 templates that nilearn ships (T1, grey and white matter
probability, brain mask): the T1 image, tissue maps, the lateral ventricles' signed distance and
local half-width, the depth below the outer CSF, soft region memberships and the places where
lesions may lie. All maps live on the cohort's grid; `render_anatomy`
(pifexp.synthetic.render) changes them per subject. Pure functions: the templates come from
nilearn's package data; saving and loading an anatomy is pifexp.synthetic.store's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import nibabel as nib
import numpy as np
from nilearn import datasets
from scipy import ndimage
from scipy.special import expit

from pifexp.data.grid import Grid
from pifexp.errors import ConfigError

TEMPLATE_RESOLUTIONS = (1, 2)  # mm: the grids nilearn ships the templates on
TEMPLATES: dict[str, Callable[..., nib.Nifti1Image]] = {
    "t1": datasets.load_mni152_template,
    "gm": datasets.load_mni152_gm_template,
    "wm": datasets.load_mni152_wm_template,
    "brain": datasets.load_mni152_brain_mask,
}
# white_matter: anywhere in the white matter (a signal whose place varies from subject to subject)
LESION_LOCATIONS = ("periventricular", "juxtacortical", "infratentorial", "white_matter")
TISSUES = ("gm", "wm", "csf")
# a Gaussian's FWHM is this many standard deviations
FWHM_PER_SD = 2.0 * np.sqrt(2.0 * np.log(2.0))
# a voxel's partial volume ramps from 0 to 1 over one voxel around a surface: the ramp's midpoint
PARTIAL_VOLUME_MIDPOINT = 0.5
# points on the ventricle volume curve (linear between them; the curve is smooth)
CURVE_POINTS = 256


@dataclass(eq=False)
class Anatomy:
    """The reference anatomy on a cohort's grid (float32 maps) and what was measured on it.

    maps: t1 (template units, 0..1), brain (soft mask), gm, ventricle_distance (mm, negative
    inside the ventricles), ventricle_half_width (mm, of the nearest part of the ventricles),
    cortex (soft membership), region:<name> (soft memberships, not yet restricted to grey
    matter), candidates:<location> (where lesion centres may lie, 0..1).
    """

    grid: Grid
    maps: dict[str, np.ndarray]
    tissue_intensity: dict[str, float]  # mean template T1 of pure gm, wm, csf
    brain_center_mm: np.ndarray  # centre of mass of the brain mask, world mm
    ventricle_widening: np.ndarray  # wall shifts, as shares of the local half-width ...
    ventricle_log_volume: np.ndarray  # ... and log(volume / volume now), increasing
    template_resolution: int
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def voxel_mm(self) -> float:
        return float(self.grid.voxel_size[0])


def cohort_grid(
    shape: Sequence[int], field_of_view_mm: Sequence[float], center_mm: Sequence[float]
) -> Grid:
    """A RAS grid of `shape` with isotropic voxels just large enough to cover the field of view,
    centred on `center_mm` (the middle between the first and last voxel centres)."""
    shape_array = np.asarray(shape, dtype=int)
    if shape_array.shape != (3,) or np.any(shape_array < 1):
        raise ConfigError(f"task.input_shape={list(shape)} must be three positive integers")
    field_of_view = np.asarray(field_of_view_mm, dtype=float)
    center = np.asarray(center_mm, dtype=float)
    if field_of_view.shape != (3,) or np.any(field_of_view <= 0):
        raise ConfigError(
            f"data.synthetic.grid.field_of_view_mm={list(field_of_view_mm)} must be three sizes > 0"
        )
    if center.shape != (3,):
        raise ConfigError(f"data.synthetic.grid.center_mm={list(center_mm)} must be x, y, z (mm)")
    voxel_mm = float(np.max(field_of_view / shape_array))
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = center - voxel_mm * (shape_array - 1) / 2.0
    return Grid(tuple(int(n) for n in shape_array), affine)


def template_resolution_for(grid: Grid, setting: int | None) -> int:
    """The template grid (mm) to build from: the setting, or the coarsest that is no coarser than
    the cohort's grid (finer templates only cost time once they are smoothed down)."""
    if setting is not None:
        if int(setting) not in TEMPLATE_RESOLUTIONS:
            raise ConfigError(
                f"data.synthetic.grid.template_resolution={setting} must be one of "
                f"{list(TEMPLATE_RESOLUTIONS)} (mm) or null"
            )
        return int(setting)
    fitting = [r for r in TEMPLATE_RESOLUTIONS if r <= min(grid.voxel_size)]
    return max(fitting) if fitting else min(TEMPLATE_RESOLUTIONS)


@lru_cache(maxsize=len(TEMPLATE_RESOLUTIONS))
def load_templates(resolution: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """nilearn's MNI152 templates as float32 (0..1) and their shared affine."""
    images = {name: load(resolution=resolution) for name, load in TEMPLATES.items()}
    affine = images["brain"].affine
    return {name: image.get_fdata(dtype=np.float32) for name, image in images.items()}, affine


def world_axes(shape: Sequence[int], affine: np.ndarray) -> list[np.ndarray]:
    """World coordinate (mm) of the voxel centres along each axis of an axis-aligned grid,
    shaped to broadcast: x (n, 1, 1), y (1, n, 1), z (1, 1, n)."""
    if not np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))):
        raise ValueError(f"the grid is not axis-aligned: affine {np.round(affine, 3).tolist()}")
    axes = []
    for axis, n in enumerate(shape):
        coordinate = affine[axis, axis] * np.arange(n, dtype=np.float32) + affine[axis, 3]
        broadcast = [1, 1, 1]
        broadcast[axis] = n
        axes.append(coordinate.astype(np.float32).reshape(broadcast))
    return axes


def soft_ellipsoids(
    axes: Sequence[np.ndarray],
    centers: Sequence[Sequence[float]],
    radii: Sequence[float],
    edge_mm: float,
) -> np.ndarray:
    """Soft membership (0..1) of the union of axis-aligned ellipsoids with the same semi-axes."""
    radii_array = np.asarray(radii, dtype=np.float32)
    membership = np.zeros(np.broadcast_shapes(*(a.shape for a in axes)), dtype=np.float32)
    for center in centers:
        scaled = sum(((a - c) / r) ** 2 for a, c, r in zip(axes, center, radii_array, strict=True))
        # (rho - 1) * smallest semi-axis approximates the distance (mm) outside the surface
        outside_mm = (np.sqrt(scaled) - 1.0) * radii_array.min()
        membership = np.maximum(membership, expit(-outside_mm / edge_mm).astype(np.float32))
    return membership


def distance_mm(mask: np.ndarray, spacing_mm: float) -> np.ndarray:
    """Distance (mm) of every voxel to the nearest voxel of `mask` (0 inside it)."""
    if not mask.any():
        return np.full(mask.shape, np.inf, dtype=np.float32)
    return ndimage.distance_transform_edt(~mask, sampling=spacing_mm).astype(np.float32)


def build_anatomy(
    grid: Grid,
    anatomy_cfg: Mapping[str, Any],
    lesions_cfg: Mapping[str, Any] | None,
    template_resolution: int | None,
) -> Anatomy:
    """The reference anatomy on `grid`: everything measured on the templates at their own
    resolution (distances need fine voxels), then smoothed and resampled onto the grid."""
    resolution = template_resolution_for(grid, template_resolution)
    fine_maps, tissue_intensity, template_affine = _template_maps(
        anatomy_cfg, lesions_cfg, resolution
    )
    grid_to_template = np.linalg.inv(template_affine) @ grid.affine
    maps = {
        name: _resample(array, grid_to_template, grid, resolution)
        for name, array in fine_maps.items()
    }
    grid_axes = world_axes(grid.shape, grid.affine)
    edge_mm = float(anatomy_cfg["edge_mm"])
    for name, region in anatomy_cfg["regions"].items():
        maps[f"region:{name}"] = soft_ellipsoids(
            grid_axes, region["centers"], region["radii"], edge_mm
        )

    brain = maps["brain"]
    brain_center = np.array(
        [float((brain * axis).sum() / brain.sum()) for axis in grid_axes], dtype=float
    )
    widening, log_volume = _ventricle_curve(
        maps["ventricle_distance"],
        maps["ventricle_half_width"],
        brain,
        grid.voxel_size[0],
        anatomy_cfg["ventricles"]["widening_range"],
    )
    return Anatomy(
        grid=grid,
        maps=maps,
        tissue_intensity=tissue_intensity,
        brain_center_mm=brain_center,
        ventricle_widening=widening,
        ventricle_log_volume=log_volume,
        template_resolution=resolution,
        meta={"ventricle_volume_ml": _ventricle_volume_ml(maps, grid)},
    )


def _template_maps(
    anatomy_cfg: Mapping[str, Any], lesions_cfg: Mapping[str, Any] | None, resolution: int
) -> tuple[dict[str, np.ndarray], dict[str, float], np.ndarray]:
    """The maps on the templates' own grid, the pure tissues' mean T1 and the templates' affine."""
    templates, template_affine = load_templates(resolution)
    spacing = float(resolution)
    t1, gm, wm = templates["t1"], templates["gm"], templates["wm"]
    inside = templates["brain"] > PARTIAL_VOLUME_MIDPOINT
    csf = np.clip(templates["brain"] - gm - wm, 0.0, 1.0) * inside
    pure = float(anatomy_cfg["pure_tissue_threshold"])
    tissue_intensity = {
        name: float(t1[(probability >= pure) & inside].mean())
        for name, probability in zip(TISSUES, (gm, wm, csf), strict=True)
    }
    axes = world_axes(t1.shape, template_affine)
    ventricles_cfg = anatomy_cfg["ventricles"]
    csf_like = csf > float(ventricles_cfg["csf_threshold"])
    ventricles = _ventricle_mask(csf_like, inside, axes, ventricles_cfg, spacing)
    ventricle_distance, half_width = _ventricle_distance(
        ventricles, axes[0], ventricles_cfg, spacing
    )
    outer_csf = ~inside | (csf_like & ~ventricles)
    cortex = distance_mm(outer_csf, spacing) <= float(anatomy_cfg["cortex_depth_mm"])
    fine_maps: dict[str, np.ndarray] = {
        "t1": t1,
        "brain": templates["brain"],
        "gm": gm,
        "ventricle_distance": ventricle_distance,
        "ventricle_half_width": half_width,
        "cortex": cortex.astype(np.float32),
    }
    if lesions_cfg is not None:
        fine_maps.update(
            _lesion_candidates(gm, wm, inside, ventricle_distance, axes[2], lesions_cfg, spacing)
        )
    return fine_maps, tissue_intensity, template_affine


def _ventricle_mask(
    csf_like: np.ndarray,
    inside: np.ndarray,
    axes: Sequence[np.ndarray],
    ventricles_cfg: Mapping[str, Any],
    spacing: float,
) -> np.ndarray:
    """The lateral ventricles: CSF-like voxels in the box, deep enough below the brain's surface."""
    box_min, box_max = (np.asarray(ventricles_cfg[k], float) for k in ("box_min_mm", "box_max_mm"))
    in_box = np.ones(csf_like.shape, dtype=bool)
    for axis, low, high in zip(axes, box_min, box_max, strict=True):
        in_box &= (axis >= low) & (axis <= high)
    depth_in_brain = distance_mm(~inside, spacing)
    ventricles = (
        csf_like & inside & in_box & (depth_in_brain >= float(ventricles_cfg["min_depth_mm"]))
    )
    if not ventricles.any():
        raise ConfigError(
            "data.synthetic.anatomy.ventricles: no template voxel qualifies (box, csf_threshold, "
            "min_depth_mm)"
        )
    return ventricles


def _ventricle_distance(
    ventricles: np.ndarray, x: np.ndarray, ventricles_cfg: Mapping[str, Any], spacing: float
) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance to the ventricles' walls (mm, negative inside) and the local half-width."""
    depth_in_ventricles = distance_mm(~ventricles, spacing)
    ventricle_distance = distance_mm(ventricles, spacing) - depth_in_ventricles
    # each part of the ventricles widens in proportion to its own half-width (the deepest point
    # nearby), so that enlarged ventricles keep their shape instead of swelling into a blob
    reach_voxels = int(round(float(ventricles_cfg["half_width_reach_mm"]) / spacing))
    half_width = ndimage.maximum_filter(depth_in_ventricles, size=2 * reach_voxels + 1)
    # the septum between the two lateral ventricles stays: no widening across the midline
    half_width = half_width * (np.abs(x) > float(ventricles_cfg["septum_half_width_mm"]))
    return ventricle_distance, half_width


def ventricle_fraction(
    ventricle_distance: np.ndarray, half_width: np.ndarray, widening: float, voxel_mm: float
) -> np.ndarray:
    """The share of each voxel inside the ventricles once their walls moved out by `widening`
    times the local half-width (negative: in)."""
    return np.clip(
        PARTIAL_VOLUME_MIDPOINT + (widening * half_width - ventricle_distance) / voxel_mm, 0.0, 1.0
    ).astype(np.float32)


def _ventricle_curve(
    ventricle_distance: np.ndarray,
    half_width: np.ndarray,
    brain: np.ndarray,
    voxel_mm: float,
    widening_range: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    """Ventricle volume as the walls move: log(volume / volume now) over the widening range."""
    low, high = (float(v) for v in widening_range)
    if not low <= 0.0 <= high:
        raise ConfigError(
            f"data.synthetic.anatomy.ventricles.widening_range={list(widening_range)} must hold 0"
        )
    widening = np.linspace(low, high, CURVE_POINTS)
    near = half_width > 0
    distance, width, weight = ventricle_distance[near], half_width[near], brain[near]
    volume = np.array(
        [(ventricle_fraction(distance, width, w, voxel_mm) * weight).sum() for w in widening]
    )
    current = (ventricle_fraction(distance, width, 0.0, voxel_mm) * weight).sum()
    log_volume = np.log(np.maximum(volume, np.finfo(np.float32).tiny) / current)
    # strictly increasing, so that np.interp can invert it
    keep = np.concatenate([[True], np.diff(log_volume) > 0])
    return widening[keep], log_volume[keep]


def _ventricle_volume_ml(maps: Mapping[str, np.ndarray], grid: Grid) -> float:
    voxel_mm = grid.voxel_size[0]
    fraction = ventricle_fraction(
        maps["ventricle_distance"], maps["ventricle_half_width"], 0.0, voxel_mm
    )
    return float((fraction * maps["brain"]).sum() * voxel_mm**3 / 1000.0)


def _lesion_candidates(
    gm: np.ndarray,
    wm: np.ndarray,
    inside: np.ndarray,
    ventricle_distance: np.ndarray,
    z: np.ndarray,
    lesions_cfg: Mapping[str, Any],
    spacing: float,
) -> dict[str, np.ndarray]:
    """Where lesion centres may lie, per location (white matter only)."""
    white = (wm >= float(lesions_cfg["white_matter_threshold"])) & inside
    to_grey = distance_mm(gm >= float(lesions_cfg["grey_matter_threshold"]), spacing)
    near, far = (float(v) for v in lesions_cfg["periventricular_mm"])
    periventricular = white & (ventricle_distance >= near) & (ventricle_distance <= far)
    juxtacortical = white & (to_grey <= float(lesions_cfg["juxtacortical_mm"])) & ~periventricular
    infratentorial = white & np.broadcast_to(
        z < float(lesions_cfg["infratentorial_below_mm"]), white.shape
    )
    candidates = dict(
        zip(LESION_LOCATIONS, (periventricular, juxtacortical, infratentorial, white), strict=True)
    )
    return {f"candidates:{name}": mask.astype(np.float32) for name, mask in candidates.items()}


def _resample(
    array: np.ndarray, grid_to_template: np.ndarray, grid: Grid, resolution: int
) -> np.ndarray:
    """Linear resampling onto the grid, smoothed first where the grid is coarser (anti-aliasing);
    beyond the templates' edge the nearest edge value continues."""
    voxel_mm = np.asarray(grid.voxel_size)
    sigma_mm = np.sqrt(np.maximum(voxel_mm**2 - resolution**2, 0.0)) / FWHM_PER_SD
    source = array.astype(np.float32)
    if np.any(sigma_mm > 0):
        source = ndimage.gaussian_filter(source, sigma=sigma_mm / resolution)
    return ndimage.affine_transform(
        source,
        grid_to_template[:3, :3],
        offset=grid_to_template[:3, 3],
        output_shape=grid.shape,
        order=1,
        mode="nearest",
    ).astype(np.float32)


def smooth_random_field(
    rng: np.random.Generator, grid: Grid, spacing_mm: float, components: int
) -> np.ndarray:
    """Smooth Gaussian random fields on the grid, unit variance at every voxel: independent normal
    weights on control points `spacing_mm` apart, spread by Gaussian kernels of that width.

    The kernels are separable, so the field is three small matrix products instead of a 3D
    convolution (cheap on a 1 mm grid). Shape (components, *grid.shape), float32.
    """
    kernels = []
    for axis, n in enumerate(grid.shape):
        voxel = grid.affine[axis, axis] * np.arange(n, dtype=float)
        # control points reach one spacing beyond the grid so the edges vary as much as the middle
        controls = np.arange(voxel.min() - spacing_mm, voxel.max() + 2 * spacing_mm, spacing_mm)
        kernel = np.exp(-0.5 * ((voxel[:, None] - controls[None, :]) / spacing_mm) ** 2)
        kernel /= np.sqrt((kernel**2).sum(axis=1, keepdims=True))  # unit variance per voxel
        kernels.append(kernel.astype(np.float32))
    weights = rng.standard_normal((components, *(k.shape[1] for k in kernels)), dtype=np.float32)
    field_ = np.einsum("cijk,zk->cijz", weights, kernels[2], optimize=True)
    field_ = np.einsum("cijz,yj->ciyz", field_, kernels[1], optimize=True)
    return np.ascontiguousarray(np.einsum("ciyz,xi->cxyz", field_, kernels[0], optimize=True))

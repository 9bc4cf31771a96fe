"""From a plan row to an image: the subject's anatomy, its warp onto the reference grid, the
scanner (bias field, gain, noise), and the effect map. Pure functions: data in, arrays out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from pifexp.data.grid import Grid
from pifexp.synthetic.anatomy import (
    PARTIAL_VOLUME_MIDPOINT,
    Anatomy,
    smooth_random_field,
    ventricle_fraction,
    world_axes,
)
from pifexp.synthetic.lesions import (
    Lesion,
    draw_lesions,
    expected_lesions,
    lesion_intensity,
    paint_lesion,
)
from pifexp.synthetic.plan import IMAGE_STREAM, SUBJECT_STREAM, rng, subject_log_factors
from pifexp.synthetic.settings import (
    CORTEX,
    HEAD_SCALE,
    VENTRICLES,
    CohortSettings,
    effect_names,
)

ML_PER_MM3 = 1e-3


def render_anatomy(
    anatomy: Anatomy,
    log_factors: Mapping[str, float],
    lesions: Sequence[Lesion] = (),
    lesion_load: np.ndarray | None = None,
    lesion_contrast: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """The subject's T1 image (template units) on the reference grid, before warping, and its
    lesion map (share of each voxel).

    Grey matter changes by its region's factor and trades places with CSF (thinner cortex and a
    smaller hippocampus look darker); the ventricle walls move (each part by a share of its
    half-width) until the ventricles hold their factor's volume; lesions pull white matter
    towards CSF intensity. `lesion_load` (expected lesion share per voxel, with
    `lesion_contrast`) stands in for drawn lesions where an average subject is wanted.
    """
    maps, tissue = anatomy.maps, anatomy.tissue_intensity
    t1 = np.array(maps["t1"], dtype=np.float32)
    grey = maps["gm"]
    log_grey = float(log_factors[CORTEX]) * maps["cortex"]
    for name in maps:
        if name.startswith("region:"):
            log_grey = log_grey + float(log_factors[name.split(":", 1)[1]]) * maps[name]
    grey_change = np.clip(grey * np.expm1(log_grey), -grey, 1.0 - grey)
    t1 += grey_change * (tissue["gm"] - tissue["csf"])

    widening = float(
        np.interp(log_factors[VENTRICLES], anatomy.ventricle_log_volume, anatomy.ventricle_widening)
    )
    distance, half_width = maps["ventricle_distance"], maps["ventricle_half_width"]
    change = (
        ventricle_fraction(distance, half_width, widening, anatomy.voxel_mm)
        - ventricle_fraction(distance, half_width, 0.0, anatomy.voxel_mm)
    ) * maps["brain"]
    target = np.where(change > 0, np.float32(tissue["csf"]), np.float32(tissue["wm"]))
    t1 += np.abs(change) * (target - t1)

    lesion_map = np.zeros(anatomy.grid.shape, dtype=np.float32)
    if lesion_load is not None:
        lesion_map = np.minimum(lesion_load, 1.0).astype(np.float32) * maps["brain"]
        t1 += lesion_map * (lesion_intensity(tissue, lesion_contrast) - t1)
    for lesion in lesions:
        paint_lesion(t1, lesion_map, lesion, anatomy)
    return t1, lesion_map


def warp_coordinates(
    grid: Grid, center_mm: np.ndarray, log_head_scale: float, displacement_mm: np.ndarray | None
) -> np.ndarray:
    """Voxel coordinates on the reference grid that each voxel of the subject's image shows: a
    head scaled about the brain's centre, plus a smooth displacement (mm). Shape (3, *grid)."""
    axes = world_axes(grid.shape, grid.affine)
    inverse_scale = np.float32(np.exp(-log_head_scale))
    coordinates = np.empty((3, *grid.shape), dtype=np.float32)
    for a in range(3):
        source_mm = center_mm[a] + (axes[a] - center_mm[a]) * inverse_scale
        coordinates[a] = (source_mm - grid.affine[a, 3]) / grid.affine[a, a]
        if displacement_mm is not None:
            coordinates[a] += displacement_mm[a] / grid.affine[a, a]
    return coordinates


def synthesize_image(
    anatomy: Anatomy,
    image: Mapping[str, Any],
    synthetic: Mapping[str, Any],
    task: Mapping[str, Any],
) -> tuple[np.ndarray, dict[str, float]]:
    """One image (float32, stored units) and its lesion count and volume (ml).

    Its subject's lesions come from the subject's random stream (the same on every visit); the
    misregistration, bias field and noise from the image's own, in this order.
    """
    seed = int(synthetic["seed"])
    subject_rng = rng(seed, SUBJECT_STREAM, int(image["subject_index"]))
    image_rng = rng(seed, IMAGE_STREAM, int(image["image_index"]))
    lesions: list[Lesion] = []
    if task.get("lesions"):
        group = "patients" if int(image["label"]) == 1 else "controls"
        lesions = draw_lesions(
            subject_rng, anatomy, task["lesions"][group], float(image["lesion_count_mean"])
        )
    log_factors = {name: float(image[f"log_{name}"]) for name in effect_names(synthetic["anatomy"])}
    clean, lesion_map = render_anatomy(anatomy, log_factors, lesions)
    warped, brain = _misregister(
        image_rng, anatomy, clean, float(image[f"log_{HEAD_SCALE}"]), synthetic["misregistration"]
    )
    volume = _scan(image_rng, anatomy, warped, brain, image, synthetic["intensity"])
    voxel_ml = anatomy.voxel_mm**3 * ML_PER_MM3
    return volume, {
        "lesion_count": len(lesions),
        "lesion_volume_ml": float(lesion_map.sum() * voxel_ml),
    }


def _misregister(
    image_rng: np.random.Generator,
    anatomy: Anatomy,
    clean: np.ndarray,
    log_head_scale: float,
    misregistration: Mapping[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """The subject's image as normalization leaves it (head size, a smooth displacement) and the
    brain mask that moved with it."""
    grid = anatomy.grid
    displacement = float(misregistration["sd_mm"]) * smooth_random_field(
        image_rng, grid, float(misregistration["spacing_mm"]), components=3
    )
    coordinates = warp_coordinates(grid, anatomy.brain_center_mm, log_head_scale, displacement)
    del displacement
    warped = ndimage.map_coordinates(clean, coordinates, order=1, mode="constant", cval=0.0)
    brain = (
        ndimage.map_coordinates(
            anatomy.maps["brain"], coordinates, order=1, mode="constant", cval=0.0
        )
        >= PARTIAL_VOLUME_MIDPOINT
    )
    return warped, brain


def _scan(
    image_rng: np.random.Generator,
    anatomy: Anatomy,
    warped: np.ndarray,
    brain: np.ndarray,
    image: Mapping[str, Any],
    intensity: Mapping[str, Any],
) -> np.ndarray:
    """The scanner: a smooth bias field, the image's gain, noise inside the brain, zero outside."""
    log_bias = (
        float(intensity["bias_sd"])
        * smooth_random_field(
            image_rng, anatomy.grid, float(intensity["bias_spacing_mm"]), components=1
        )[0]
    )
    gain = float(intensity["reference"]) * np.exp(float(image["log_intensity_scale"]))
    volume = warped * np.exp(log_bias) * np.float32(gain)
    noise_sd = (
        float(intensity["noise_sd"])
        * anatomy.tissue_intensity["wm"]
        * gain
        * np.exp(float(image["log_noise"]))
    )
    volume[brain] += image_rng.standard_normal(int(brain.sum()), dtype=np.float32) * np.float32(
        noise_sd
    )
    volume[~brain] = 0.0
    np.maximum(volume, 0.0, out=volume)
    return volume


def effect_map(anatomy: Anatomy, plan: pd.DataFrame, settings: CohortSettings) -> np.ndarray:
    """Expected class 1 image minus expected class 0 image (stored units, reference grid).

    Each class's average subject: no natural variation, misregistration, bias or noise; the
    cohort's mean age and sex mix (ukb: the class's sex); the class's mean severity; expected
    lesion load instead of drawn lesions.
    """
    synthetic, task = settings.synthetic, settings.task
    anatomy_cfg = synthetic["anatomy"]
    names = effect_names(anatomy_cfg)
    images = []
    for label in (0, 1):
        members = plan[plan["label"] == label]
        male = float(label) if task["sex_is_label"] else float(plan["male"].mean())
        factors = subject_log_factors(
            anatomy_cfg,
            task,
            np.array([plan["age"].mean()]),
            np.array([male]),
            np.array([members["severity"].mean()]),
            np.zeros((1, len(names))),
            np.zeros(1),
        )
        load, contrast = expected_lesions(
            anatomy, task, label, float(members["lesion_count_mean"].mean())
        )
        clean, _ = render_anatomy(
            anatomy,
            {n: float(v[0]) for n, v in factors.items()},
            lesion_load=load,
            lesion_contrast=contrast,
        )
        coordinates = warp_coordinates(
            anatomy.grid, anatomy.brain_center_mm, float(factors[HEAD_SCALE][0]), None
        )
        images.append(
            ndimage.map_coordinates(clean, coordinates, order=1, mode="constant", cval=0.0)
        )
    return (images[1] - images[0]) * np.float32(synthetic["intensity"]["reference"])

"""Synthetic MNI-space cohorts that stand in for UK Biobank (sex), ADNI (AD vs CN) and MS vs HC.

Every subject is the MNI152 template, changed: natural variation of regional volumes, head size,
ageing (grey-matter loss, ventricle enlargement), the task's class signal (regional atrophy or
growth, white-matter lesions), then a smooth residual misregistration, a bias field, scanner gain
and noise. The images go into a folder with `manifest.csv` (one row per image) and
`effect_map.nii.gz` (the expected class 1 image minus the expected class 0 image), which the data
pipeline reads like any cohort.

Files are byte-identical for the same settings and seed, whatever the number of processes: every
subject and image draws from its own stream of `numpy.random.SeedSequence(seed, spawn_key=...)`,
and the gzip streams carry no time stamp. A cohort is written into a hidden folder next to its
target and renamed into place when complete, so an interrupted run never leaves a folder that
looks finished.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from scipy import ndimage, stats

from pifexp.data.grid import Grid
from pifexp.data.parallel import available_cores, parallel_map
from pifexp.data.synthetic_anatomy import (
    LESION_LOCATIONS,
    PARTIAL_VOLUME_MIDPOINT,
    Anatomy,
    build_anatomy,
    cohort_grid,
    smooth_random_field,
    template_resolution_for,
    ventricle_fraction,
    world_axes,
)
from pifexp.errors import ConfigError, PifexpError
from pifexp.files import write_atomic

# bump when the generator changes what it writes for the same settings
GENERATOR_VERSION = 1
MANIFEST_FILE = "manifest.csv"
EFFECT_MAP_FILE = "effect_map.nii.gz"
COHORT_FILE = "cohort.json"  # written last: its presence with the right key marks a finished cohort
MONTAGE_FILE = "montage.png"
IMAGES_DIR = "images"
ANATOMY_DIR = ".anatomy"
PARTIAL_SUFFIX = ".partial-"
KEY_CHARACTERS = 12
FOLDER_MODE, FILE_MODE = 0o777, 0o666  # before the umask, as for any new folder or file
# independent random streams (spawn keys) of one seed
PLAN_STREAM, SUBJECT_STREAM, IMAGE_STREAM = 0, 1, 2
DTYPES = {"int16": np.int16, "float32": np.float32}
GZIP_LEVELS = range(10)
# settings that do not change the files a cohort consists of
NON_CONTENT_KEYS = (
    "out_dir",
    "cache_dir",
    "plot",
    "plot_subjects_per_class",
    "plot_threshold",
    "workers",
    "progress",
)
HEAD_SCALE = "head_scale"
CORTEX, VENTRICLES = "cortex", "ventricles"
SEX_NAMES = ("F", "M")  # sex 0, sex 1
MONTHS_PER_YEAR = 12.0
ML_PER_MM3 = 1e-3
# a ball's coordinate along any axis has variance radius^2 / 5: the Gaussian that spreads
# expected lesion load has this standard deviation
BALL_SD_PER_RADIUS = 1.0 / np.sqrt(5.0)
# montage layout (inches per panel, resolution)
PANEL_SIZE_INCHES = (6.0, 2.4)
MONTAGE_DPI = 100


@dataclass(frozen=True, eq=False)
class CohortSettings:
    """The settings a cohort is made from, checked; `key` hashes those that define its files."""

    task_name: str
    classes: tuple[str, str]
    grid: Grid
    synthetic: dict[str, Any]  # data.synthetic, resolved
    task: dict[str, Any]  # data.synthetic.tasks[task.name]
    key: str
    target: Path  # where the cohort lives
    target_setting: str  # the setting that chose it, for messages

    @property
    def n_subjects(self) -> int:
        return int(self.synthetic["n_subjects"])

    @property
    def seed(self) -> int:
        return int(self.synthetic["seed"])


@dataclass(frozen=True, eq=False)
class Lesion:
    center_mm: np.ndarray  # (3,) world
    axes: np.ndarray  # (3, 3): rows are the unit directions of the semi-axes
    radii_mm: np.ndarray  # (3,) semi-axes
    contrast: float  # share of the way from white matter to CSF intensity


# ----------------------------------------------------------------------------- settings


def cohort_settings(cfg: DictConfig) -> CohortSettings:
    """Check cfg.data.synthetic and cfg.task and work out the cohort's key and folder."""
    try:
        task_name = str(cfg.task.name)
        classes = tuple(str(c) for c in cfg.task.classes)
        input_shape = list(cfg.task.input_shape)
        tasks = cfg.data.synthetic.get("tasks") or {}
        if task_name not in tasks:
            raise ConfigError(
                f"data.synthetic.tasks has no entry for task.name={task_name!r} "
                f"(it has {', '.join(sorted(tasks)) or 'none'})"
            )
        synthetic = OmegaConf.to_container(cfg.data.synthetic, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as error:
        raise ConfigError(f"data.synthetic: {str(error).splitlines()[0]}") from None
    assert isinstance(synthetic, dict)
    if len(classes) != 2:
        raise ConfigError(f"task.classes={list(classes)} must name two classes")
    task = synthetic["tasks"][task_name]
    _check_settings(synthetic, task, task_name)
    grid_cfg = synthetic["grid"]
    grid = cohort_grid(input_shape, grid_cfg["field_of_view_mm"], grid_cfg["center_mm"])
    template_resolution_for(grid, grid_cfg["template_resolution"])  # checks the setting

    content = {key: value for key, value in synthetic.items() if key not in NON_CONTENT_KEYS}
    content["tasks"] = {task_name: task}
    if not task.get("lesions"):
        content.pop("lesions", None)
    description = {
        "generator": GENERATOR_VERSION,
        "task": task_name,
        "classes": list(classes),
        "input_shape": list(grid.shape),
        "synthetic": content,
    }
    key = hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()
    if synthetic.get("out_dir") is not None:
        target = Path(str(synthetic["out_dir"])).expanduser()
        target_setting = f"data.synthetic.out_dir={synthetic['out_dir']}"
    else:
        shape = "x".join(map(str, grid.shape))
        name = f"{task_name}-{shape}-n{int(synthetic['n_subjects'])}-{key[:KEY_CHARACTERS]}"
        target = Path(str(synthetic["cache_dir"])).expanduser() / name
        target_setting = f"data.synthetic.cache_dir={synthetic['cache_dir']}"
    return CohortSettings(
        task_name, classes, grid, synthetic, task, key, target.absolute(), target_setting
    )


def _check_settings(synthetic: Mapping[str, Any], task: Mapping[str, Any], task_name: str) -> None:
    prefix = f"data.synthetic.tasks.{task_name}"
    n_subjects = synthetic["n_subjects"]
    if not isinstance(n_subjects, int) or n_subjects < 2:
        raise ConfigError(f"data.synthetic.n_subjects={n_subjects!r} must be an integer >= 2")
    if not isinstance(synthetic["seed"], int) or synthetic["seed"] < 0:
        raise ConfigError(f"data.synthetic.seed={synthetic['seed']!r} must be an integer >= 0")
    if synthetic["dtype"] not in DTYPES:
        raise ConfigError(
            f"data.synthetic.dtype={synthetic['dtype']!r} must be one of {list(DTYPES)}"
        )
    if synthetic["compress_level"] not in GZIP_LEVELS:
        raise ConfigError(
            f"data.synthetic.compress_level={synthetic['compress_level']!r} must be 0..9"
        )
    workers = synthetic["workers"]
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"data.synthetic.workers={workers!r} must be >= 1 or null (all cores)")
    if not 0.0 < float(task["class_fraction"]) < 1.0:
        raise ConfigError(f"{prefix}.class_fraction={task['class_fraction']} must lie in (0, 1)")
    if not 1.0 <= float(task["images_per_subject"]) <= len(task["visits"]):
        raise ConfigError(
            f"{prefix}.images_per_subject={task['images_per_subject']} must lie between 1 and "
            f"the number of visits ({len(task['visits'])})"
        )
    if float(task["effect_strength"]) < 0:
        raise ConfigError(f"{prefix}.effect_strength={task['effect_strength']} must be >= 0")
    if int(task["sites"]) < 1:
        raise ConfigError(f"{prefix}.sites={task['sites']} must be >= 1")
    if not task["sex_is_label"] and not 0.0 <= float(task["male_fraction"]) <= 1.0:
        raise ConfigError(f"{prefix}.male_fraction={task['male_fraction']} must lie in [0, 1]")
    known = set(effect_names(synthetic["anatomy"])) | {HEAD_SCALE}
    effects = {
        f"{prefix}.class_effects": task.get("class_effects") or {},
        "data.synthetic.anatomy.sex_effects": synthetic["anatomy"]["sex_effects"] or {},
    }
    for setting, values in effects.items():
        for name, value in values.items():
            if name not in known:
                raise ConfigError(
                    f"{setting}.{name}: unknown; known are {', '.join(sorted(known))}"
                )
            if float(value) <= -1.0:
                raise ConfigError(f"{setting}.{name}={value} must be > -1 (a relative change)")
    lesions = task.get("lesions") or {}
    for group, lesion_cfg in lesions.items():
        unknown = set(lesion_cfg["locations"]) - set(LESION_LOCATIONS)
        if unknown:
            raise ConfigError(
                f"{prefix}.lesions.{group}.locations: unknown {sorted(unknown)}; "
                f"known are {list(LESION_LOCATIONS)}"
            )
        if sum(float(loc["share"]) for loc in lesion_cfg["locations"].values()) <= 0:
            raise ConfigError(f"{prefix}.lesions.{group}.locations: the shares add up to 0")


def effect_names(anatomy_cfg: Mapping[str, Any]) -> list[str]:
    """The volumes a subject's anatomy varies in: the regions, the cortex and the ventricles."""
    return [*anatomy_cfg["regions"], CORTEX, VENTRICLES]


# ----------------------------------------------------------------------------- the cohort plan


def plan_cohort(settings: CohortSettings) -> pd.DataFrame:
    """One row per image: who, when, which class, and every per-subject and per-image number the
    image is drawn from (log volume factors, head size, gains, noise level, lesion load)."""
    synthetic, task = settings.synthetic, settings.task
    anatomy_cfg, intensity = synthetic["anatomy"], synthetic["intensity"]
    rng = _rng(settings.seed, PLAN_STREAM)
    n_subjects = settings.n_subjects
    fraction = float(task["class_fraction"])
    n_positive = int(np.clip(round(n_subjects * fraction), 1, n_subjects - 1))
    labels = np.zeros(n_subjects, dtype=int)
    labels[rng.permutation(n_subjects)[:n_positive]] = 1

    visits = list(task["visits"].items())
    n_images = max(round(n_subjects * float(task["images_per_subject"])), n_subjects)
    images_positive = round(n_images * fraction)
    later_visits = len(visits) - 1
    visit_counts = np.ones(n_subjects, dtype=int)
    for label, class_images in ((0, n_images - images_positive), (1, images_positive)):
        members = np.flatnonzero(labels == label)
        extra = int(np.clip(class_images - members.size, 0, members.size * later_visits))
        if extra:
            # every subject has a baseline; the extra images take (subject, later visit) slots
            slots = rng.choice(members.size * later_visits, size=extra, replace=False)
            visit_counts[members] += np.bincount(slots // later_visits, minlength=members.size)

    age_cfg = task["age"]
    low = (float(age_cfg["min"]) - float(age_cfg["mean"])) / float(age_cfg["sd"])
    high = (float(age_cfg["max"]) - float(age_cfg["mean"])) / float(age_cfg["sd"])
    baseline_age = stats.truncnorm.ppf(
        rng.random(n_subjects), low, high, loc=float(age_cfg["mean"]), scale=float(age_cfg["sd"])
    )
    male = (
        labels.copy()
        if task["sex_is_label"]
        else (rng.random(n_subjects) < float(task["male_fraction"])).astype(int)
    )
    sites = int(task["sites"])
    site = rng.integers(sites, size=n_subjects)
    site_log_scale = rng.normal(0.0, float(intensity["site_scale_sd"]), sites)
    site_log_noise = rng.normal(0.0, float(intensity["site_noise_sd"]), sites)
    names = effect_names(anatomy_cfg)
    natural = rng.standard_normal((n_subjects, len(names)))
    natural_head = rng.standard_normal(n_subjects)
    severity_sd = float(task["severity_sd"])
    base_severity = labels * np.exp(rng.normal(-0.5 * severity_sd**2, severity_sd, n_subjects))
    lesion_count_mean = _lesion_count_means(task, labels, base_severity)

    subject = np.repeat(np.arange(n_subjects), visit_counts)
    visit = np.concatenate([np.arange(count) for count in visit_counts])
    months = np.array([visits[v][1] for v in visit], dtype=float)
    years = months / MONTHS_PER_YEAR
    age = baseline_age[subject] + years
    severity = base_severity[subject] * (1.0 + float(task["progression_per_year"]) * years)
    image_log_scale = rng.normal(0.0, float(intensity["image_scale_sd"]), subject.size)

    width = len(str(n_subjects))
    subject_ids = np.array([f"sub-{i + 1:0{width}d}" for i in range(n_subjects)])
    sessions = np.array([visits[v][0] for v in visit])
    plan = pd.DataFrame(
        {
            "image_index": np.arange(subject.size),
            "subject_index": subject,
            "subject_id": subject_ids[subject],
            "session": sessions,
            "path": [
                f"{IMAGES_DIR}/{s}_{v}.nii.gz"
                for s, v in zip(subject_ids[subject], sessions, strict=True)
            ],
            "label": labels[subject],
            "age": age,
            "male": male[subject],
            "site": site[subject],
            "severity": severity,
            "lesion_count_mean": lesion_count_mean[subject],
            "log_intensity_scale": site_log_scale[site[subject]] + image_log_scale,
            "log_noise": site_log_noise[site[subject]],
        }
    )
    log_factors = subject_log_factors(
        anatomy_cfg, task, age, male[subject], severity, natural[subject], natural_head[subject]
    )
    for name, values in log_factors.items():
        plan[f"log_{name}"] = values
    return plan


def subject_log_factors(
    anatomy_cfg: Mapping[str, Any],
    task: Mapping[str, Any],
    age: np.ndarray,
    male: np.ndarray,
    severity: np.ndarray,
    natural: np.ndarray,
    natural_head: np.ndarray,
) -> dict[str, np.ndarray]:
    """Log volume factor of every region, the cortex and the ventricles, and the log head scale:
    natural variation + ageing + sex + class signal (scaled by severity and effect strength)."""
    strength = float(task["effect_strength"])
    sex_effects = anatomy_cfg["sex_effects"] or {}
    class_effects = task.get("class_effects") or {}
    sex_weight = strength if task["sex_is_label"] else 1.0
    ageing = anatomy_cfg["ageing"]
    years_aged = np.maximum(np.asarray(age, float) - float(ageing["onset_years"]), 0.0)

    def signal(name: str) -> np.ndarray:
        return (
            np.log1p(float(sex_effects.get(name, 0.0))) * sex_weight * male
            + np.log1p(float(class_effects.get(name, 0.0))) * strength * severity
        )

    factors = {}
    for column, name in enumerate(effect_names(anatomy_cfg)):
        factors[name] = (
            float(anatomy_cfg["variation"].get(name, 0.0)) * natural[..., column]
            + np.log1p(float(ageing["per_year"].get(name, 0.0))) * years_aged
            + signal(name)
        )
    factors[HEAD_SCALE] = float(anatomy_cfg["head_scale_sd"]) * natural_head + signal(HEAD_SCALE)
    return factors


def _lesion_count_means(
    task: Mapping[str, Any], labels: np.ndarray, base_severity: np.ndarray
) -> np.ndarray:
    lesions = task.get("lesions")
    if not lesions:
        return np.zeros(labels.size)
    patients = float(lesions["patients"]["count_mean"]) * float(task["effect_strength"])
    return np.where(labels == 1, patients * base_severity, float(lesions["controls"]["count_mean"]))


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(stream)))


# ----------------------------------------------------------------------------- one subject


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
        t1 += lesion_map * (_lesion_intensity(tissue, lesion_contrast) - t1)
    for lesion in lesions:
        _paint_lesion(t1, lesion_map, lesion, anatomy)
    return t1, lesion_map


def _lesion_intensity(tissue: Mapping[str, float], contrast: float) -> np.float32:
    return np.float32(tissue["wm"] - contrast * (tissue["wm"] - tissue["csf"]))


def _paint_lesion(t1: np.ndarray, lesion_map: np.ndarray, lesion: Lesion, anatomy: Anatomy) -> None:
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
    intensity = _lesion_intensity(anatomy.tissue_intensity, lesion.contrast)
    t1[box] += share * (intensity - t1[box])
    lesion_map[box] = np.maximum(lesion_map[box], share)


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
    grid, voxel_mm = anatomy.grid, anatomy.voxel_mm
    lesions: list[Lesion] = []
    for name, k in zip(names, per_location, strict=True):
        candidates = np.asarray(anatomy.maps[f"candidates:{name}"]).ravel()
        if k == 0 or candidates.sum() <= 0:
            continue
        flat = rng.choice(candidates.size, size=k, p=candidates / candidates.sum())
        voxels = np.stack(np.unravel_index(flat, grid.shape), axis=1).astype(float)
        voxels += rng.uniform(-0.5, 0.5, voxels.shape)
        centers = voxels * voxel_mm + grid.affine[:3, 3]
        radius = np.exp(
            rng.normal(
                np.log(float(lesion_cfg["radius_median_mm"])), float(lesion_cfg["radius_sigma"]), k
            )
        )
        elongation = rng.uniform(*(float(v) for v in locations[name]["elongation"]), size=k)
        contrast = rng.uniform(*(float(v) for v in lesion_cfg["contrast"]), size=k)
        directions = rng.standard_normal((k, 3))
        if name == "periventricular":
            directions = np.where(
                np.linalg.norm(
                    outward := _ventricle_normals(anatomy, voxels), axis=1, keepdims=True
                )
                > 0,
                outward,
                directions,
            )
        for i in range(k):
            long_axis = elongation[i] ** (2.0 / 3.0)  # keeps the volume of the radius's ball
            radii = radius[i] * np.array(
                [long_axis, 1 / np.sqrt(long_axis), 1 / np.sqrt(long_axis)]
            )
            lesions.append(Lesion(centers[i], _frame(directions[i]), radii, float(contrast[i])))
    return lesions


def _ventricle_normals(anatomy: Anatomy, voxels: np.ndarray) -> np.ndarray:
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
    misregistration, bias field and noise from the image's own.
    """
    seed = int(synthetic["seed"])
    grid = anatomy.grid
    subject_rng = _rng(seed, SUBJECT_STREAM, int(image["subject_index"]))
    image_rng = _rng(seed, IMAGE_STREAM, int(image["image_index"]))
    lesions: list[Lesion] = []
    if task.get("lesions"):
        group = "patients" if int(image["label"]) == 1 else "controls"
        lesions = draw_lesions(
            subject_rng, anatomy, task["lesions"][group], float(image["lesion_count_mean"])
        )
    log_factors = {name: float(image[f"log_{name}"]) for name in effect_names(synthetic["anatomy"])}
    clean, lesion_map = render_anatomy(anatomy, log_factors, lesions)

    misregistration = synthetic["misregistration"]
    displacement = float(misregistration["sd_mm"]) * smooth_random_field(
        image_rng, grid, float(misregistration["spacing_mm"]), components=3
    )
    coordinates = warp_coordinates(
        grid, anatomy.brain_center_mm, float(image[f"log_{HEAD_SCALE}"]), displacement
    )
    del displacement
    warped = ndimage.map_coordinates(clean, coordinates, order=1, mode="constant", cval=0.0)
    brain = (
        ndimage.map_coordinates(
            anatomy.maps["brain"], coordinates, order=1, mode="constant", cval=0.0
        )
        >= PARTIAL_VOLUME_MIDPOINT
    )
    del coordinates

    intensity = synthetic["intensity"]
    log_bias = (
        float(intensity["bias_sd"])
        * smooth_random_field(image_rng, grid, float(intensity["bias_spacing_mm"]), components=1)[0]
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
    voxel_ml = anatomy.voxel_mm**3 * ML_PER_MM3
    return volume, {
        "lesion_count": len(lesions),
        "lesion_volume_ml": float(lesion_map.sum() * voxel_ml),
    }


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
        load, contrast = _expected_lesions(
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


def _expected_lesions(
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


# ----------------------------------------------------------------------------- files


def nifti_gz_bytes(
    volume: np.ndarray, affine: np.ndarray, dtype: str, compress_level: int
) -> bytes:
    """A .nii.gz file's bytes: NIfTI-1 in MNI space (qform and sform), gzip without a time stamp
    or file name, so the same volume always gives the same bytes."""
    if np.issubdtype(DTYPES[dtype], np.integer):
        limits = np.iinfo(DTYPES[dtype])
        volume = np.clip(np.rint(volume), limits.min, limits.max)
    image = nib.Nifti1Image(volume.astype(DTYPES[dtype]), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code="mni")
    image.set_sform(affine, code="mni")
    return gzip.compress(image.to_bytes(), compresslevel=compress_level, mtime=0)


_WORKER: dict[str, Any] = {}


def _start_worker(anatomy_dir: str, staging_dir: str, synthetic: dict, task: dict) -> None:
    _WORKER.update(
        anatomy=Anatomy.load(Path(anatomy_dir)),
        staging=Path(staging_dir),
        synthetic=synthetic,
        task=task,
    )


def _write_image(image: dict[str, Any]) -> dict[str, Any]:
    anatomy, synthetic = _WORKER["anatomy"], _WORKER["synthetic"]
    volume, lesion_stats = synthesize_image(anatomy, image, synthetic, _WORKER["task"])
    data = nifti_gz_bytes(
        volume, anatomy.grid.affine, synthetic["dtype"], int(synthetic["compress_level"])
    )
    (_WORKER["staging"] / image["path"]).write_bytes(data)
    return {"image_index": int(image["image_index"]), **lesion_stats}


def manifest_table(
    plan: pd.DataFrame, settings: CohortSettings, lesion_stats: pd.DataFrame
) -> pd.DataFrame:
    """manifest.csv: subject_id, session, path (relative to the cohort folder), label (class
    name) and covariates: age, sex, site, and (where the task has them) severity and lesions."""
    task = settings.task
    table = pd.DataFrame(
        {
            "subject_id": plan["subject_id"],
            "session": plan["session"],
            "path": plan["path"],
            "label": [settings.classes[label] for label in plan["label"]],
            "age": plan["age"].round(1),
            "sex": [SEX_NAMES[m] for m in plan["male"]],
            "site": [f"site-{s + 1}" for s in plan["site"]],
        }
    )
    if not task["sex_is_label"]:
        table["severity"] = plan["severity"].round(3)
    if task.get("lesions"):
        stats_by_image = lesion_stats.set_index("image_index").loc[plan["image_index"]]
        table["lesion_count"] = stats_by_image["lesion_count"].to_numpy()
        table["lesion_volume_ml"] = stats_by_image["lesion_volume_ml"].round(3).to_numpy()
    return table


def generate_cohort(settings: CohortSettings) -> Path:
    """Write the cohort into a hidden folder beside settings.target, then rename it into place.
    Returns the manifest's path."""
    target = settings.target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL_SUFFIX}", dir=target.parent))
    staging.chmod(_permissions(FOLDER_MODE))  # mkdtemp makes it private; a cohort is not
    try:
        synthetic, task = settings.synthetic, settings.task
        plan = plan_cohort(settings)
        anatomy = build_anatomy(
            settings.grid,
            synthetic["anatomy"],
            synthetic["lesions"] if task.get("lesions") else None,
            synthetic["grid"]["template_resolution"],
        )
        anatomy.save(staging / ANATOMY_DIR)
        (staging / IMAGES_DIR).mkdir()
        workers = synthetic["workers"] or available_cores()
        results = list(
            parallel_map(
                _write_image,
                plan.to_dict("records"),
                workers,
                f"synth {settings.task_name}",
                bool(synthetic["progress"]),
                initializer=_start_worker,
                initargs=(str(staging / ANATOMY_DIR), str(staging), synthetic, task),
            )
        )
        _WORKER.clear()
        manifest = manifest_table(plan, settings, pd.DataFrame(results))
        manifest.to_csv(staging / MANIFEST_FILE, index=False)
        effect = effect_map(anatomy, plan, settings)
        (staging / EFFECT_MAP_FILE).write_bytes(
            nifti_gz_bytes(
                effect, settings.grid.affine, "float32", int(synthetic["compress_level"])
            )
        )
        shutil.rmtree(staging / ANATOMY_DIR)
        if synthetic["plot"]:
            write_montage(staging, settings)
        (staging / COHORT_FILE).write_text(
            json.dumps(_cohort_description(settings, manifest, anatomy), indent=2, sort_keys=True)
            + "\n"
        )
        _move_into_place(staging, settings)
    finally:
        _WORKER.clear()
        shutil.rmtree(staging, ignore_errors=True)
    return target / MANIFEST_FILE


def _cohort_description(settings: CohortSettings, manifest: pd.DataFrame, anatomy: Anatomy) -> dict:
    return {
        "key": settings.key,
        "generator": GENERATOR_VERSION,
        "task": settings.task_name,
        "classes": list(settings.classes),
        "grid": settings.grid.to_json(),
        "images": int(len(manifest)),
        "subjects": int(manifest["subject_id"].nunique()),
        "images_per_class": {c: int((manifest["label"] == c).sum()) for c in settings.classes},
        "template_resolution_mm": anatomy.template_resolution,
        "tissue_intensity": {k: round(v, 6) for k, v in anatomy.tissue_intensity.items()},
        "settings": {k: v for k, v in settings.synthetic.items() if k not in NON_CONTENT_KEYS},
    }


def _move_into_place(staging: Path, settings: CohortSettings) -> None:
    target = settings.target
    try:
        # rename replaces an empty folder in one step; anything else in the way makes it fail
        os.rename(staging, target)
    except OSError as error:
        if cohort_state(target, settings.key) == "finished":
            return  # another process finished the same cohort first
        raise PifexpError(
            f"{settings.target_setting}: cannot move the cohort into place ({error})"
        ) from None


def cohort_state(folder: Path, key: str) -> str:
    """'missing', 'empty', 'finished' (a cohort of these settings), 'other' (a finished synthetic
    cohort of other settings) or 'foreign' (something else)."""
    if not folder.exists():
        return "missing"
    if not folder.is_dir():
        return "foreign"
    if not any(folder.iterdir()):
        return "empty"
    try:
        description = json.loads((folder / COHORT_FILE).read_text())
    except (OSError, ValueError):
        return "foreign"
    if not (folder / MANIFEST_FILE).is_file():
        return "foreign"
    return "finished" if description.get("key") == key else "other"


def _permissions(mode: int) -> int:
    """`mode` less the process's umask, as a newly made file or folder would get."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _ensure(settings: CohortSettings) -> tuple[Path, bool]:
    """The cohort's manifest, generated unless a finished cohort of the same settings is there."""
    if settings.synthetic["plot"] and importlib.util.find_spec("matplotlib") is None:
        raise PifexpError("data.synthetic.plot=true needs matplotlib; install it or set plot=false")
    state = cohort_state(settings.target, settings.key)
    if state == "finished":
        return settings.target / MANIFEST_FILE, False
    if state == "other":
        raise PifexpError(
            f"{settings.target_setting}: {settings.target} holds a synthetic cohort made with "
            f"other settings; choose another folder or delete that one"
        )
    if state == "foreign":
        raise PifexpError(
            f"{settings.target_setting}: {settings.target} is not empty and holds no finished "
            f"synthetic cohort; choose an empty or new folder"
        )
    return generate_cohort(settings), True


def ensure_synthetic_cohort(cfg: DictConfig) -> Path:
    """The manifest of the synthetic cohort that cfg describes (task, data.synthetic): generated
    on first use (into data.synthetic.out_dir, or a folder per settings under
    data.synthetic.cache_dir) and reused afterwards."""
    manifest, _ = _ensure(cohort_settings(cfg))
    return manifest


# ----------------------------------------------------------------------------- montage


def write_montage(folder: Path, settings: CohortSettings) -> Path:
    """montage.png: the first subjects of each class (one column per class), each with the
    effect map on top, cut where the effect is largest."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
        from nilearn import plotting
    except ImportError as error:
        raise PifexpError(
            f"data.synthetic.plot=true needs matplotlib ({error}); install it or set plot=false"
        ) from None
    synthetic = settings.synthetic
    manifest = pd.read_csv(folder / MANIFEST_FILE, dtype={"subject_id": str, "session": str})
    effect = nib.load(folder / EFFECT_MAP_FILE)
    effect_data = effect.get_fdata(dtype=np.float32)
    peak = np.unravel_index(int(np.argmax(np.abs(effect_data))), effect_data.shape)
    cut = nib.affines.apply_affine(effect.affine, peak)
    threshold = float(synthetic["plot_threshold"]) * float(np.abs(effect_data).max())
    per_class = int(synthetic["plot_subjects_per_class"])
    width, height = PANEL_SIZE_INCHES
    figure, axes = plt.subplots(
        per_class,
        len(settings.classes),
        figsize=(width * len(settings.classes), height * per_class),
        squeeze=False,
    )
    for column, name in enumerate(settings.classes):
        rows = manifest[manifest["label"] == name].head(per_class)
        for row_index in range(per_class):
            ax = axes[row_index, column]
            if row_index >= len(rows):
                ax.axis("off")
                continue
            row = rows.iloc[row_index]
            plotting.plot_stat_map(
                effect,
                bg_img=str(folder / row["path"]),
                axes=ax,
                cut_coords=cut,
                threshold=threshold,
                colorbar=False,
                draw_cross=False,
                annotate=False,
                title=f"{name}: {row['subject_id']} {row['session']}",
            )
    try:
        write_atomic(
            folder / MONTAGE_FILE, lambda path: figure.savefig(path, format="png", dpi=MONTAGE_DPI)
        )
        (folder / MONTAGE_FILE).chmod(_permissions(FILE_MODE))
    finally:
        plt.close(figure)
    return folder / MONTAGE_FILE


# ----------------------------------------------------------------------------- command


def synth_command(cfg: DictConfig) -> Path:
    """`pifexp data synth`: write (or find) the cohort and say what it is."""
    settings = cohort_settings(cfg)
    start = time.perf_counter()
    manifest_path, generated = _ensure(settings)
    folder = manifest_path.parent
    if settings.synthetic["plot"] and not (folder / MONTAGE_FILE).exists():
        write_montage(folder, settings)
    manifest = pd.read_csv(manifest_path, dtype={"subject_id": str, "session": str})
    counts = ", ".join(f"{c} {int((manifest['label'] == c).sum())}" for c in settings.classes)
    grid = settings.grid
    verb = f"wrote in {time.perf_counter() - start:.1f} s" if generated else "already there"
    print(
        f"{verb}: {folder}\n"
        f"  {len(manifest)} images of {manifest['subject_id'].nunique()} subjects ({counts}), "
        f"task {settings.task_name}, grid {'x'.join(map(str, grid.shape))} voxels of "
        f"{grid.voxel_size[0]:.3g} mm\n"
        f"  manifest: {manifest_path}\n  effect map: {folder / EFFECT_MAP_FILE}"
        + (f"\n  montage: {folder / MONTAGE_FILE}" if (folder / MONTAGE_FILE).exists() else "")
    )
    return manifest_path

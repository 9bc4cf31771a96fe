"""The settings a synthetic cohort is made from: checked, hashed into a key, and given a folder.

`cohort_settings` takes data.synthetic as plain Python values (dicts, lists, numbers, strings)
and the task's name, classes and input shape; the messages of its errors name the settings as
they are written in the configs (data.synthetic.*, task.*).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pifexp.data.grid import Grid
from pifexp.errors import ConfigError
from pifexp.synthetic.anatomy import LESION_LOCATIONS, cohort_grid, template_resolution_for

# bump when the generator changes what it writes for the same settings
GENERATOR_VERSION = 1
MANIFEST_FILE = "manifest.csv"
EFFECT_MAP_FILE = "effect_map.nii.gz"
COHORT_FILE = "cohort.json"  # written last: its presence with the right key marks a finished cohort
MONTAGE_FILE = "montage.png"
IMAGES_DIR = "images"
KEY_CHARACTERS = 12
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


def cohort_settings(
    synthetic: Mapping[str, Any],
    *,
    task_name: str,
    classes: Sequence[str],
    input_shape: Sequence[int],
) -> CohortSettings:
    """Check data.synthetic (plain values) and the task's classes and input shape, and work out
    the cohort's key and folder."""
    task_name = str(task_name)
    tasks = synthetic.get("tasks") or {}
    if task_name not in tasks:
        raise ConfigError(
            f"data.synthetic.tasks has no entry for task.name={task_name!r} "
            f"(it has {', '.join(sorted(tasks)) or 'none'})"
        )
    synthetic = copy.deepcopy(dict(synthetic))
    class_names = tuple(str(name) for name in classes)
    if len(class_names) != 2:
        raise ConfigError(f"task.classes={list(class_names)} must name two classes")
    task = synthetic["tasks"][task_name]
    _check_settings(synthetic, task, task_name)
    grid_cfg = synthetic["grid"]
    grid = cohort_grid(list(input_shape), grid_cfg["field_of_view_mm"], grid_cfg["center_mm"])
    template_resolution_for(grid, grid_cfg["template_resolution"])  # checks the setting
    key = _content_key(synthetic, task, task_name, class_names, grid)
    target, target_setting = _target(synthetic, task_name, grid, key)
    return CohortSettings(
        task_name, class_names, grid, synthetic, task, key, target.absolute(), target_setting
    )


def effect_names(anatomy_cfg: Mapping[str, Any]) -> list[str]:
    """The volumes a subject's anatomy varies in: the regions, the cortex and the ventricles."""
    return [*anatomy_cfg["regions"], CORTEX, VENTRICLES]


def _content_key(
    synthetic: Mapping[str, Any],
    task: Mapping[str, Any],
    task_name: str,
    classes: tuple[str, str],
    grid: Grid,
) -> str:
    """SHA-256 of what defines the cohort's files: the generator, the task and its settings."""
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
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()


def _target(synthetic: Mapping[str, Any], task_name: str, grid: Grid, key: str) -> tuple[Path, str]:
    """The cohort's folder and the setting that chose it: out_dir, or a folder per settings in
    cache_dir."""
    if synthetic.get("out_dir") is not None:
        target = Path(str(synthetic["out_dir"])).expanduser()
        return target, f"data.synthetic.out_dir={synthetic['out_dir']}"
    shape = "x".join(map(str, grid.shape))
    name = f"{task_name}-{shape}-n{int(synthetic['n_subjects'])}-{key[:KEY_CHARACTERS]}"
    target = Path(str(synthetic["cache_dir"])).expanduser() / name
    return target, f"data.synthetic.cache_dir={synthetic['cache_dir']}"


def _check_settings(synthetic: Mapping[str, Any], task: Mapping[str, Any], task_name: str) -> None:
    prefix = f"data.synthetic.tasks.{task_name}"
    _check_cohort(synthetic)
    _check_task(task, prefix)
    _check_effects(synthetic, task, prefix)
    _check_lesions(task, prefix)


def _check_cohort(synthetic: Mapping[str, Any]) -> None:
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


def _check_task(task: Mapping[str, Any], prefix: str) -> None:
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


def _check_effects(synthetic: Mapping[str, Any], task: Mapping[str, Any], prefix: str) -> None:
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


def _check_lesions(task: Mapping[str, Any], prefix: str) -> None:
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

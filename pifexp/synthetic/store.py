"""A cohort on disk: written by worker processes into a hidden folder beside its target, renamed
into place when complete, and reused afterwards.

Files are byte-identical for the same settings and seed, whatever the number of processes: every
subject and image draws from its own random stream (pifexp.synthetic.plan), and the gzip streams
carry no time stamp. An interrupted run never leaves a folder that looks finished: cohort.json is
written last, and the folder only gets its name once it is complete.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from pifexp.data.grid import Grid
from pifexp.data.parallel import available_cores, parallel_map
from pifexp.errors import PifexpError
from pifexp.files import new_folder_mode
from pifexp.synthetic.anatomy import Anatomy, build_anatomy
from pifexp.synthetic.montage import write_montage
from pifexp.synthetic.plan import plan_cohort
from pifexp.synthetic.render import effect_map, synthesize_image
from pifexp.synthetic.settings import (
    COHORT_FILE,
    DTYPES,
    EFFECT_MAP_FILE,
    GENERATOR_VERSION,
    IMAGES_DIR,
    MANIFEST_FILE,
    NON_CONTENT_KEYS,
    CohortSettings,
)

ANATOMY_DIR = ".anatomy"  # inside the hidden folder while the images are written
ANATOMY_FILE = "anatomy.json"
PARTIAL_SUFFIX = ".partial-"
SEX_NAMES = ("F", "M")  # sex 0, sex 1


def ensure_cohort(settings: CohortSettings) -> tuple[Path, bool]:
    """The cohort's manifest, and whether it was generated now: a finished cohort of the same
    settings in the target folder is reused; a folder holding anything else is refused."""
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


def unfinished_cohorts(settings: CohortSettings) -> list[Path]:
    """Hidden folders of syntheses beside the target that were interrupted (or are running
    now): never taken for a cohort, safe to delete when no synthesis is running."""
    parent = settings.target.parent
    return sorted(parent.glob(f".*{PARTIAL_SUFFIX}*")) if parent.is_dir() else []


def generate_cohort(settings: CohortSettings) -> Path:
    """Write the cohort into a hidden folder beside settings.target, then rename it into place.
    Returns the manifest's path."""
    target = settings.target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL_SUFFIX}", dir=target.parent))
    staging.chmod(new_folder_mode())  # mkdtemp makes it private; a cohort is not
    try:
        _write_cohort(staging, settings)
        _move_into_place(staging, settings)
    finally:
        _WORKER.clear()
        shutil.rmtree(staging, ignore_errors=True)
    return target / MANIFEST_FILE


def _write_cohort(staging: Path, settings: CohortSettings) -> None:
    """Everything a cohort consists of, into `staging`; cohort.json last."""
    synthetic, task = settings.synthetic, settings.task
    plan = plan_cohort(settings)
    anatomy = build_anatomy(
        settings.grid,
        synthetic["anatomy"],
        synthetic["lesions"] if task.get("lesions") else None,
        synthetic["grid"]["template_resolution"],
    )
    save_anatomy(anatomy, staging / ANATOMY_DIR)
    (staging / IMAGES_DIR).mkdir()
    lesion_stats = _write_images(staging, settings, plan)
    manifest = manifest_table(plan, settings, lesion_stats)
    manifest.to_csv(staging / MANIFEST_FILE, index=False)
    effect = effect_map(anatomy, plan, settings)
    (staging / EFFECT_MAP_FILE).write_bytes(
        nifti_gz_bytes(effect, settings.grid.affine, "float32", int(synthetic["compress_level"]))
    )
    shutil.rmtree(staging / ANATOMY_DIR)
    if synthetic["plot"]:
        write_montage(staging, settings)
    description = _cohort_description(settings, manifest, anatomy)
    (staging / COHORT_FILE).write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")


def _write_images(staging: Path, settings: CohortSettings, plan: pd.DataFrame) -> pd.DataFrame:
    """Every image of the plan, by worker processes that load the anatomy saved in `staging`;
    returns each image's lesion count and volume."""
    synthetic = settings.synthetic
    results = list(
        parallel_map(
            _write_image,
            plan.to_dict("records"),
            synthetic["workers"] or available_cores(),
            f"synth {settings.task_name}",
            bool(synthetic["progress"]),
            initializer=_start_worker,
            initargs=(str(staging / ANATOMY_DIR), str(staging), synthetic, settings.task),
        )
    )
    _WORKER.clear()
    return pd.DataFrame(results)


# what each worker process holds while it writes images (set by _start_worker)
_WORKER: dict[str, Any] = {}


def _start_worker(anatomy_dir: str, staging_dir: str, synthetic: dict, task: dict) -> None:
    _WORKER.update(
        anatomy=load_anatomy(Path(anatomy_dir)),
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
    path = _WORKER["staging"] / image["path"]
    try:
        path.write_bytes(data)
    except OSError as error:  # e.g. a full disk: say which file could not be written
        raise OSError(error.errno, error.strerror, str(path)) from None
    return {"image_index": int(image["image_index"]), **lesion_stats}


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


def save_anatomy(anatomy: Anatomy, folder: Path) -> None:
    """Maps as .npy files (memory-mappable by worker processes), the rest as JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in anatomy.maps.items():
        np.save(folder / f"{_map_file_name(name)}.npy", array)
    description = {
        "grid": anatomy.grid.to_json(),
        "maps": list(anatomy.maps),
        "tissue_intensity": anatomy.tissue_intensity,
        "brain_center_mm": anatomy.brain_center_mm.tolist(),
        "ventricle_widening": anatomy.ventricle_widening.tolist(),
        "ventricle_log_volume": anatomy.ventricle_log_volume.tolist(),
        "template_resolution": anatomy.template_resolution,
        "meta": anatomy.meta,
    }
    (folder / ANATOMY_FILE).write_text(json.dumps(description))


def load_anatomy(folder: Path) -> Anatomy:
    """An anatomy that save_anatomy wrote; its maps memory-mapped, read-only."""
    description = json.loads((folder / ANATOMY_FILE).read_text())
    maps = {
        name: np.load(folder / f"{_map_file_name(name)}.npy", mmap_mode="r")
        for name in description["maps"]
    }
    return Anatomy(
        grid=Grid.from_json(description["grid"]),
        maps=maps,
        tissue_intensity=description["tissue_intensity"],
        brain_center_mm=np.asarray(description["brain_center_mm"]),
        ventricle_widening=np.asarray(description["ventricle_widening"]),
        ventricle_log_volume=np.asarray(description["ventricle_log_volume"]),
        template_resolution=int(description["template_resolution"]),
        meta=description["meta"],
    )


def _map_file_name(map_name: str) -> str:
    return map_name.replace(":", "-")


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

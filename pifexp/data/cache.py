"""The cohort's preprocessed volumes in one memory-mappable array, built once and shared by runs.

A cache is a folder `<cache_dir>/<N>x<D>x<H>x<W>-<key>/` holding `volumes.npy` (N, D, H, W),
`index.csv` (one row per volume, manifest order) and `meta.json` (grid, settings, key). The key
hashes the manifest rows, each file's size and modification time, and the preprocessing settings,
so a changed file or setting leads to a new cache and nothing is overwritten. A build happens in a
hidden temporary folder that is renamed into place only when complete: an interrupted build never
leaves a folder that looks like a cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pifexp.data.grid import Grid, left_right_axis, reference_grid
from pifexp.data.manifest import LABEL, PATH, SESSION, SUBJECT, describe_row
from pifexp.data.nifti import load_volume, read_header
from pifexp.data.parallel import parallel_map, worker_count
from pifexp.data.preprocess import PreprocessPlan, PreprocessSpec, make_plan, preprocess_volume
from pifexp.errors import PifexpError
from pifexp.files import new_folder_mode

# bump when the preprocessing code changes what it writes, so old caches are not reused
CACHE_FORMAT = 1
KEY_CHARACTERS = 16
VOLUMES_FILE, INDEX_FILE, META_FILE = "volumes.npy", "index.csv", "meta.json"
BUILDING_PREFIX = ".building-"
INDEX_COLUMNS = [SUBJECT, SESSION, LABEL, PATH]


@dataclass(frozen=True, eq=False)
class CachedCohort:
    """An opened cache: volumes (read-only memory map) with their rows, grid and left-right axis."""

    path: Path
    volumes: np.memmap  # (N, D, H, W)
    index: pd.DataFrame  # subject_id, session, label, path: row i describes volumes[i]
    grid: Grid
    flip_axis: int  # voxel axis of a volume that runs left-right
    settings: dict[str, Any]

    @property
    def labels(self) -> np.ndarray:
        return self.index[LABEL].to_numpy(dtype=np.int64)


def cache_key(manifest_df: pd.DataFrame, spec: PreprocessSpec) -> str:
    """Hash of the rows (in order), each file's size and mtime, and the preprocessing settings."""
    rows = []
    for position, row in enumerate(manifest_df[INDEX_COLUMNS].itertuples(index=False)):
        try:
            stat = os.stat(row.path)
        except OSError as error:
            where = describe_row(manifest_df, position)
            raise PifexpError(f"{where}: {row.path} cannot be read ({error.strerror})") from None
        rows.append([*map(str, row), stat.st_size, stat.st_mtime_ns])
    content = {"format": CACHE_FORMAT, "settings": spec.as_dict(), "rows": rows}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def cache_location(manifest_df: pd.DataFrame, spec: PreprocessSpec, cache_dir: str | Path) -> Path:
    """Where this cohort's cache with these settings lives (whether or not it is built yet)."""
    key = cache_key(manifest_df, spec)
    return _location(cache_dir, [len(manifest_df), *spec.target_shape], key)


def _location(cache_dir: str | Path, shape: list[int], key: str) -> Path:
    name = f"{'x'.join(map(str, shape))}-{key[:KEY_CHARACTERS]}"
    return Path(cache_dir).expanduser().resolve() / name


def is_built(location: Path) -> bool:
    return (location / META_FILE).is_file()


def manifest_reference_grid(manifest_df: pd.DataFrame, spec: PreprocessSpec) -> Grid:
    """The grid whose field of view the manifest's images are preprocessed in, from their
    headers (data.grid.reference_grid); each header's errors name its row."""
    names = [describe_row(manifest_df, i) for i in range(len(manifest_df))]
    paths = manifest_df[PATH].tolist()
    headers = [read_header(path, where) for path, where in zip(paths, names, strict=True)]
    return reference_grid(
        [header.grid for header in headers],
        names,
        spec.resample_to,
        spec.affine_atol_mm,
        spec.mni_resolution,
    )


def build_cache(
    manifest_df: pd.DataFrame,
    spec: PreprocessSpec,
    cache_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """The cache folder for this cohort and settings, built over all cores if it is not there."""
    # the key is taken before reading: a file changed during the build makes the next key differ
    key = cache_key(manifest_df, spec)
    location = _location(cache_dir, [len(manifest_df), *spec.target_shape], key)
    if is_built(location):
        return location
    names = [describe_row(manifest_df, i) for i in range(len(manifest_df))]
    paths = manifest_df[PATH].tolist()
    reference = manifest_reference_grid(manifest_df, spec)
    plan = make_plan(spec, reference)

    location.parent.mkdir(parents=True, exist_ok=True)
    building = Path(
        tempfile.mkdtemp(prefix=f"{BUILDING_PREFIX}{location.name}-", dir=location.parent)
    )
    building.chmod(new_folder_mode())  # mkdtemp makes it private; a shared cache is not
    try:
        _write_volumes(building / VOLUMES_FILE, plan, paths, names, workers, progress)
        manifest_df[INDEX_COLUMNS].to_csv(building / INDEX_FILE, index=False)
        meta = _meta(key, plan, reference, spec, manifest_df)
        (building / META_FILE).write_text(json.dumps(meta, indent=2))
        for name in (VOLUMES_FILE, INDEX_FILE, META_FILE):
            _fsync(building / name)
        try:
            os.replace(building, location)
        except OSError:
            # another build of the same key finished first: its folder is kept, ours dropped
            if not is_built(location):
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return location


def _write_volumes(
    volumes_path: Path,
    plan: PreprocessPlan,
    paths: list[str],
    names: list[str],
    workers: int | None,
    progress: bool,
) -> None:
    """Every image preprocessed into one memory-mapped .npy file, over worker processes."""
    volumes = np.lib.format.open_memmap(
        volumes_path, mode="w+", dtype=plan.dtype, shape=(len(paths), *plan.grid.shape)
    )
    del volumes  # the workers write through their own maps of the file
    _reserve(volumes_path)
    items = list(zip(range(len(paths)), paths, names, strict=True))
    try:
        for _ in parallel_map(
            _write_volume,
            items,
            worker_count(workers),
            "caching",
            progress,
            initializer=_start_writer,
            initargs=(str(volumes_path), plan),
        ):
            pass
    finally:
        _stop_writer()


def _reserve(path: Path) -> None:
    """Allocate the whole (sparse) volumes file now: a full disk is then an error here, not a
    SIGBUS in a worker writing through its memory map."""
    if not hasattr(os, "posix_fallocate"):  # not on every platform; the writes then find out
        return
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as error:
            raise PifexpError(
                f"no room for the cache: {path.parent} needs {size / 1e9:.2f} GB "
                f"({error.strerror}); free space there or choose another data.cache_dir"
            ) from None


def _meta(
    key: str,
    plan: PreprocessPlan,
    reference: Grid,
    spec: PreprocessSpec,
    manifest_df: pd.DataFrame,
) -> dict[str, Any]:
    return {
        "format": CACHE_FORMAT,
        "key": key,
        "shape": [len(manifest_df), *plan.grid.shape],
        "dtype": plan.dtype,
        "grid": plan.grid.to_json(),
        "orientation": plan.grid.orientation,
        "flip_axis": left_right_axis(plan.grid.affine),
        "reference_grid": reference.to_json(),
        "settings": spec.as_dict(),
        "manifest": manifest_df.attrs.get("manifest"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def open_cache(path: str | Path) -> CachedCohort:
    """A built cache, memory-mapped read-only."""
    location = Path(path)
    try:
        meta = json.loads((location / META_FILE).read_text())
        index = pd.read_csv(
            location / INDEX_FILE,
            dtype={SUBJECT: str, SESSION: str, PATH: str},
            keep_default_na=False,  # a subject named "NA" is not a gap
        )
        volumes = np.load(location / VOLUMES_FILE, mmap_mode="r")
    except (OSError, ValueError) as error:
        raise PifexpError(f"{location} is not a complete pifexp cache ({error})") from None
    if (
        meta.get("format") != CACHE_FORMAT
        or list(volumes.shape) != meta["shape"]
        or len(index) != volumes.shape[0]  # a truncated index would drop images silently
    ):
        raise PifexpError(
            f"{location} was written by another pifexp version or is damaged; delete it to rebuild"
        )
    index[SESSION] = index[SESSION].fillna("")
    return CachedCohort(
        location,
        volumes,
        index,
        Grid.from_json(meta["grid"]),
        int(meta["flip_axis"]),
        meta["settings"],
    )


def load_cache(path: str | Path) -> np.memmap:
    """The cached volumes (N, D, H, W) as a read-only memory map."""
    return open_cache(path).volumes


def unfinished_builds(cache_dir: str | Path) -> list[Path]:
    """Temporary folders of builds that were interrupted (or are running now)."""
    folder = Path(cache_dir).expanduser()
    return sorted(folder.glob(f"{BUILDING_PREFIX}*")) if folder.is_dir() else []


# Per-worker state: the output file mapped once per process, and the plan.
_writer: dict[str, Any] = {}


def _start_writer(volumes_path: str, plan: PreprocessPlan) -> None:
    _writer["volumes"] = np.load(volumes_path, mmap_mode="r+")
    _writer["plan"] = plan


def _stop_writer() -> None:
    volumes = _writer.pop("volumes", None)
    if volumes is not None:
        volumes.flush()
    _writer.pop("plan", None)


def _write_volume(item: tuple[int, str, str]) -> int:
    position, path, where = item
    data, affine = load_volume(path, where)
    _writer["volumes"][position] = preprocess_volume(data, affine, _writer["plan"], where)
    return position


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())

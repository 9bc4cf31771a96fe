"""The images a finished run is applied to: a manifest (labels optional) read, checked and cached
by the functions training and `pifexp data check` use, with the run's preprocessing, on the grid
the run was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pifexp.data.cache import CachedCohort, is_built, manifest_reference_grid, open_cache
from pifexp.data.cohort import DataSpec, cached_cohort
from pifexp.data.grid import Grid, target_grid
from pifexp.data.manifest import (
    FIRST_ROW_LINE,
    LABEL,
    PATH,
    SESSION,
    SUBJECT,
    TAB_SEPARATED,
    read_manifest,
)
from pifexp.errors import ConfigError, PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.apply.finished import FinishedRun

UNKNOWN = -1  # the label of an image whose manifest has no label column


@dataclass(frozen=True)
class ImagesSpec:
    """Where the images come from and how they are read (data.* of predict and interpret); the
    preprocessing is the run's own (input.json)."""

    manifest: Path | None  # None (interpret): the run's own test images
    cache_dir: Path
    workers: int | None
    progress: bool
    mni_margin_mm: float

    def __post_init__(self) -> None:
        if self.mni_margin_mm < 0:
            raise ConfigError(f"data.check.mni_margin_mm={self.mni_margin_mm} must be >= 0")


def data_spec(run: FinishedRun, images: ImagesSpec) -> DataSpec:
    """The run's classes and preprocessing, this command's cache folder and workers."""
    return DataSpec(
        classes=run.classes,
        preprocess=run.preprocess,
        cache_dir=images.cache_dir,
        mixed_label_subjects=run.mixed_label_subjects,
        workers=images.workers,
        progress=images.progress,
        mni_margin_mm=images.mni_margin_mm,
    )


def read_images(path: Path, run: FinishedRun) -> pd.DataFrame:
    """The manifest's rows. With a label column it is read exactly as for training (read_manifest,
    both classes needed: the metrics compare them); without one, the same checks of the other
    columns, and every label UNKNOWN."""
    manifest = Path(path).expanduser().resolve()
    table = _table(manifest) if manifest.is_file() else None
    if table is None or LABEL in table.columns:
        return read_manifest(manifest, run.classes, run.mixed_label_subjects)
    missing = [column for column in (SUBJECT, PATH) if column not in table.columns]
    if missing:
        raise PifexpError(
            f"manifest {manifest} lacks the column(s) {', '.join(missing)} (needs {SUBJECT}, "
            f"{PATH}; {LABEL} is optional here; found {', '.join(map(str, table.columns))})"
        )
    if table.empty:
        raise PifexpError(f"manifest {manifest} has no rows")
    table.index = pd.RangeIndex(FIRST_ROW_LINE, FIRST_ROW_LINE + len(table), name="line")
    table.attrs = {"manifest": str(manifest), "classes": list(run.classes)}
    if SESSION not in table.columns:
        table[SESSION] = ""
    for column in (SUBJECT, PATH, SESSION):
        table[column] = table[column].fillna("").astype(str).str.strip()
    for column in (SUBJECT, PATH):
        blank = table.index[table[column] == ""]
        if len(blank):
            raise PifexpError(f"{manifest.name} line {blank[0]}: empty {column!r}")
    table[PATH] = [
        str((manifest.parent / Path(value).expanduser()).resolve()) for value in table[PATH]
    ]
    repeated = table.index[table[PATH].duplicated(keep=False)]
    if len(repeated):
        raise PifexpError(
            f"{manifest.name} lines {', '.join(map(str, repeated))} name the same file "
            f"{table.at[repeated[0], PATH]}"
        )
    table[LABEL] = UNKNOWN
    ordered = [SUBJECT, PATH, LABEL, SESSION]
    return table[ordered + [c for c in table.columns if c not in ordered]]


def labelled(images: pd.DataFrame) -> bool:
    return bool((images[LABEL] != UNKNOWN).all())


def images_cohort(manifest_df: pd.DataFrame, run: FinishedRun, images: ImagesSpec
                  ) -> CachedCohort:  # fmt: skip
    """The images preprocessed as the run's were, from their cache (built on first use, as
    training builds it: headers checked first, every voxel checked while it is read). Images
    that preprocess to another grid than the run's are refused before anything is built."""
    spec = data_spec(run, images)
    cohort = cached_cohort(
        manifest_df, spec, spec.progress, before_build=lambda: _require_grid(manifest_df, run)
    )
    _same_grid(cohort.grid, run, manifest_df)
    return cohort


def run_cohort(run: FinishedRun, images: ImagesSpec) -> CachedCohort:
    """The run's own cohort: the cache training read (input.json) while it is there, else built
    again from the run's manifest into this command's cache folder."""
    if is_built(run.cache):
        cohort = open_cache(run.cache)
        _same_grid(cohort.grid, run, None)
        return cohort
    manifest = run.manifest
    if manifest is None or not manifest.is_file():
        raise PifexpError(
            f"{run.run_dir}: the run's cohort is gone (neither its cache {run.cache} nor its "
            f"manifest {manifest} exists); give the images with data.manifest=FILE"
        )
    manifest_df = read_manifest(manifest, run.classes, run.mixed_label_subjects)
    return images_cohort(manifest_df, run, images)


def rows_of(cohort: CachedCohort, paths: list[str], where: str) -> np.ndarray:
    """Positions in the cohort's cache of these image files."""
    position = pd.Series(np.arange(len(cohort.index)), index=cohort.index[PATH].to_numpy())
    missing = [path for path in paths if path not in position.index]
    if missing:
        raise PifexpError(f"{where}: {missing[0]} is not in the cohort's cache {cohort.path}")
    return position.loc[paths].to_numpy()


def _table(manifest: Path) -> pd.DataFrame | None:
    """The file as a table of text, or None where it is no table (read_manifest names why)."""
    separator = "\t" if manifest.suffix.lower() in TAB_SEPARATED else ","
    try:
        table = pd.read_csv(manifest, sep=separator, dtype=str)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError, OSError):
        return None
    table.columns = [str(column).strip() for column in table.columns]
    return table


def _require_grid(manifest_df: pd.DataFrame, run: FinishedRun) -> None:
    """The grid these images would be preprocessed to, from their headers: the run's or none."""
    preprocess = run.preprocess
    reference = manifest_reference_grid(manifest_df, preprocess)
    _same_grid(target_grid(reference, preprocess.target_shape, preprocess.crop), run, manifest_df)


def _same_grid(grid: Grid, run: FinishedRun, manifest_df: pd.DataFrame | None) -> None:
    if grid.same_as(run.grid, run.preprocess.affine_atol_mm):
        return
    source = "the images"
    if manifest_df is not None:
        source = f"the images of {manifest_df.attrs['manifest']}"
    raise PifexpError(
        f"{source} preprocess to {_describe(grid)}, but {run.run_dir} was trained on "
        f"{_describe(run.grid)} (its {rundir.INPUT_FILE}); bring the images to the run's grid "
        "(the field of view and voxel grid of its training images) first"
    )


def _describe(grid: Grid) -> str:
    origin = ", ".join(f"{value:g}" for value in grid.affine[:3, 3])
    return f"{grid.describe()} with its first voxel at ({origin}) mm"

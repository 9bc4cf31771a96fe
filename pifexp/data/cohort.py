"""A cohort ready for training: manifest read, headers checked, cache built (once) and opened,
and a run's split drawn; the steps `pifexp train` takes before its first batch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from pifexp.data.cache import (
    CachedCohort,
    build_cache,
    cache_location,
    is_built,
    open_cache,
    unfinished_builds,
)
from pifexp.data.check import CohortReport, check_cohort
from pifexp.data.manifest import MIXED_LABEL_POLICIES, read_manifest
from pifexp.data.parallel import worker_count
from pifexp.data.preprocess import PreprocessSpec
from pifexp.data.splits import SplitSpec, draw_split
from pifexp.errors import ConfigError


@dataclass(frozen=True)
class DataSpec:
    """How a cohort's manifest is read, its images checked and cached, and its batches served
    (task.classes, task.mixed_label_subjects, task.preprocess and data.* in the config)."""

    classes: tuple[str, str]
    preprocess: PreprocessSpec
    cache_dir: Path
    mixed_label_subjects: str = "reject"
    workers: int | None = None  # processes for reading and caching; None: every core
    progress: bool = True
    mni_margin_mm: float = 5.0
    on_device: str | bool = "auto"
    device_memory_fraction: float = 0.5

    def __post_init__(self) -> None:
        if len(self.classes) != 2:
            raise ConfigError(f"task.classes={list(self.classes)} must name two classes")
        if self.mixed_label_subjects not in MIXED_LABEL_POLICIES:
            raise ConfigError(
                f"task.mixed_label_subjects={self.mixed_label_subjects!r} must be one of "
                f"{', '.join(MIXED_LABEL_POLICIES)}"
            )
        worker_count(self.workers)  # checks the setting
        if self.on_device not in ("auto", True, False):
            raise ConfigError(f"data.on_device={self.on_device!r} must be auto, true or false")
        if not 0 < self.device_memory_fraction <= 1:
            raise ConfigError(
                f"data.device_memory_fraction={self.device_memory_fraction} must lie in (0, 1]"
            )
        if self.mni_margin_mm < 0:
            raise ConfigError(f"data.check.mni_margin_mm={self.mni_margin_mm} must be >= 0")


def prepare_cohort(
    manifest: str | Path, spec: DataSpec, progress: bool | None = None
) -> CachedCohort:
    """The cohort of `manifest` preprocessed as `spec` says, from its cache (cached_cohort)."""
    show = spec.progress if progress is None else progress
    manifest_df = read_manifest(manifest, spec.classes, spec.mixed_label_subjects)
    return cached_cohort(manifest_df, spec, show)


def cached_cohort(
    manifest_df: pd.DataFrame,
    spec: DataSpec,
    progress: bool | None,
    before_build: Callable[[], None] = lambda: None,
) -> CachedCohort:
    """The images of a read manifest preprocessed as `spec` says, from their cache.

    Without a cache the headers are checked first (grid, MNI space; cheap), then `before_build`
    may refuse them too, then the cache is built, which checks every image's voxels as it reads
    them.
    """
    preprocess = spec.preprocess
    location = cache_location(manifest_df, preprocess, spec.cache_dir)
    if not is_built(location):
        check_cohort(
            manifest_df,
            resample_to=preprocess.resample_to,
            affine_atol_mm=preprocess.affine_atol_mm,
            mni_margin_mm=spec.mni_margin_mm,
            mni_resolution=preprocess.mni_resolution,
            read_voxels=False,
            progress=progress,
        )
        before_build()
        location = build_cache(manifest_df, preprocess, spec.cache_dir, spec.workers, progress)
    return open_cache(location)


def split_cohort(cohort: CachedCohort, spec: SplitSpec, seed: int) -> dict[str, list[str]]:
    """The split of the repeat with this seed (members per partition, see draw_split); with
    spec.fixed_seed, the same split for every repeat."""
    return draw_split(cohort.index, spec, seed)


def check_and_cache(
    manifest: str | Path, spec: DataSpec, build: bool = True
) -> CohortReport:
    """`pifexp data check`: read and validate every image of the manifest, build its cache
    (unless `build` is false) and describe the cohort, with warnings about leftovers of
    interrupted cache builds."""
    manifest_df = read_manifest(manifest, spec.classes, spec.mixed_label_subjects)
    preprocess = spec.preprocess
    report = check_cohort(
        manifest_df,
        resample_to=preprocess.resample_to,
        affine_atol_mm=preprocess.affine_atol_mm,
        mni_margin_mm=spec.mni_margin_mm,
        mni_resolution=preprocess.mni_resolution,
        workers=spec.workers,
        progress=spec.progress,
    )
    location = cache_location(manifest_df, preprocess, spec.cache_dir)
    status = "built earlier" if is_built(location) else "not built (build_cache=false)"
    if build and not is_built(location):
        location = build_cache(manifest_df, preprocess, spec.cache_dir, spec.workers, spec.progress)
        status = "built now"
    elif is_built(location):
        open_cache(location)  # a damaged cache is an error here, not in a later run
    warnings = list(report.warnings)
    leftovers = unfinished_builds(spec.cache_dir)
    if leftovers:
        warnings.append(
            f"{len(leftovers)} unfinished cache build(s) in {Path(spec.cache_dir).expanduser()} "
            f"(.building-*): interrupted builds, safe to delete when no build is running"
        )
    return replace(report, cache=str(location), cache_status=status, warnings=warnings)

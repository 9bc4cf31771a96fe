"""A cohort ready for training: manifest read, headers checked, cache built (once) and opened,
and a run's split drawn; the steps `pifexp train` takes before its first batch."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from pifexp.data.cache import CachedCohort, build_cache, cache_location, is_built, open_cache
from pifexp.data.check import check_cohort
from pifexp.data.manifest import read_manifest
from pifexp.data.preprocess import preprocess_settings
from pifexp.data.splits import split_subjects
from pifexp.errors import PifexpError


def prepare_cohort(cfg: DictConfig, progress: bool | None = None) -> CachedCohort:
    """The cohort of cfg.data.manifest preprocessed for cfg.task, from its cache.

    Without a cache the headers are checked first (grid, MNI space; cheap), then the cache is
    built, which checks every image's voxels as it reads them.
    """
    data = cfg.data
    if OmegaConf.is_missing(data, "manifest") or data.manifest is None:
        raise PifexpError("data.manifest is required (a CSV/TSV manifest of the cohort)")
    show = bool(data.progress) if progress is None else progress
    manifest_df = read_manifest(data.manifest, cfg.task)
    settings = preprocess_settings(cfg)
    location = cache_location(manifest_df, settings, data.cache_dir)
    if not is_built(location):
        check_cohort(
            manifest_df,
            resample_to=settings["resample_to"],
            affine_atol_mm=settings["affine_atol_mm"],
            mni_margin_mm=float(data.check.mni_margin_mm),
            mni_resolution=settings["mni_resolution"],
            read_voxels=False,
            progress=show,
        )
        location = build_cache(manifest_df, settings, data.cache_dir, data.workers, show)
    return open_cache(location)


def split_cohort(cohort: CachedCohort, cfg: DictConfig, seed: int) -> dict[str, list[str]]:
    """The seed's split of a cohort's subjects, with task.split's fractions and data.subset."""
    split_cfg: Any = cfg.task.split
    return split_subjects(
        cohort.index,
        seed,
        float(split_cfg.test_fraction),
        float(split_cfg.val_fraction),
        float(cfg.data.subset),
    )

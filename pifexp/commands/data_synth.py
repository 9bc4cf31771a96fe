"""pifexp data synth: write (or find) a synthetic cohort and say what it is."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from pifexp.experiments.specs import synthetic_spec
from pifexp.synthetic import (
    EFFECT_MAP_FILE,
    MONTAGE_FILE,
    ensure_cohort,
    unfinished_cohorts,
    write_montage,
)


def synth_command(cfg: DictConfig) -> Path:
    settings = synthetic_spec(cfg)
    start = time.perf_counter()
    manifest_path, generated = ensure_cohort(settings)
    folder = manifest_path.parent
    if settings.synthetic["plot"] and not (folder / MONTAGE_FILE).exists():
        write_montage(folder, settings)
    leftovers = unfinished_cohorts(settings)
    if leftovers:
        print(
            f"pifexp: warning: {len(leftovers)} unfinished synthesis folder(s) in "
            f"{folder.parent} ({', '.join(path.name for path in leftovers)}): interrupted "
            "syntheses, safe to delete when no synthesis is running",
            file=sys.stderr,
        )
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

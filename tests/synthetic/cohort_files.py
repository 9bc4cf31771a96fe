"""Helpers shared by the synthetic cohort tests: tiny grids, quiet overrides, reading a cohort."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from pifexp.config_dir import config_dir
from pifexp.experiments.specs import synthetic_spec
from pifexp.synthetic import MANIFEST_FILE, CohortSettings

TINY_GRID = "task.input_shape=[24,28,24]"  # about 7.8 mm voxels
SMALL_GRID = "task.input_shape=[32,38,32]"  # about 5.7 mm voxels
QUIET = ["data.synthetic.progress=false", "data.synthetic.workers=1"]


def synth_overrides(out_dir: Path | None, *extra: str) -> list[str]:
    where = [f"data.synthetic.out_dir={out_dir}"] if out_dir is not None else []
    return [*where, *QUIET, *extra]


def settings_for(*overrides: str) -> CohortSettings:
    """The cohort settings of `pifexp data synth` with these overrides."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return synthetic_spec(compose("data_synth", overrides=list(overrides)))


def read_manifest(folder: Path) -> pd.DataFrame:
    return pd.read_csv(folder / MANIFEST_FILE, dtype={"subject_id": str, "session": str})


def volumes(folder: Path, manifest: pd.DataFrame) -> np.ndarray:
    return np.stack(
        [nib.load(folder / path).get_fdata(dtype=np.float32) for path in manifest["path"]]
    )


def folder_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())

"""Tiny cohorts and runs for the tests of `pifexp interpret` and `pifexp predict`: a cohort whose
only class signal is a bright cube at a fixed place (with its effect map), trained in seconds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from pifexp.cli import main
from pifexp.synthetic import cohort_grid

SHAPE = (32, 38, 32)
# the synthetic cohorts' world box (FSL's MNI152 box), so the images pass the MNI checks
FIELD_OF_VIEW, CENTER = [182, 218, 182], [-0.5, -17.5, 18.5]
CUBE = (slice(12, 20), slice(14, 22), slice(12, 20))  # voxels: inside the brain, on the midline
CUBE_CONTRAST = 0.8


def grid():
    return cohort_grid(SHAPE, FIELD_OF_VIEW, CENTER)


def cube_cohort(folder: Path, subjects: int = 40, seed: int = 0, offset_mm: float = 0.0) -> Path:
    """NIfTI images of smooth noise, the class-1 ones with a bright cube; manifest.csv (one image
    per subject, labels CN/AD) and effect_map.nii.gz beside it. offset_mm moves the grid along x
    (left-right), where it still covers the MNI152 brain."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    affine = grid().affine.copy()
    affine[0, 3] += offset_mm
    rows = []
    for index in range(subjects):
        label = index % 2
        noise = rng.normal(0.5, 0.08, (4, 5, 4))
        # smooth, so that no single voxel stands out: 8x8x8 blocks of noise, cut to the grid
        volume = np.kron(noise, np.ones((8, 8, 8)))[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
        volume = volume + rng.normal(0.0, 0.05, SHAPE)
        if label:
            volume[CUBE] += CUBE_CONTRAST
        path = folder / f"sub-{index:02d}.nii.gz"
        nib.save(nib.Nifti1Image(volume.astype(np.float32), affine), path)
        subject = f"sub-{index:02d}"
        rows.append({"subject_id": subject, "path": path.name, "label": ["CN", "AD"][label]})
    effect = np.zeros(SHAPE, dtype=np.float32)
    effect[CUBE] = CUBE_CONTRAST
    nib.save(nib.Nifti1Image(effect, affine), folder / "effect_map.nii.gz")
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def train_overrides(manifest: Path, cache: Path) -> list[str]:
    """A `pifexp train` cell on the cube cohort that takes seconds: 2 seeds, no augmentation
    (a flip or shift would move the cube)."""
    return [
        "task=adni", "profile=quick", f"task.input_shape={list(SHAPE)}".replace(" ", ""),
        "data=manifest", f"data.manifest={manifest}", f"data.cache_dir={cache}",
        "task.preprocess.normalize=none", "task.augment.flip_p=0", "task.augment.shift=[0,0]",
        "trainer.seeds=2", "trainer.max_epochs=30", "trainer.ignore_before=0",
        "trainer.patience=10", "trainer.batch_size=8", "trainer.progress=false",
        "data.progress=false",
    ]  # fmt: skip


def train(run_dir: Path, model: str, manifest: Path, cache: Path) -> Path:
    overrides = train_overrides(manifest, cache)
    assert main(["train", f"model={model}", *overrides, f"hydra.run.dir={run_dir}"]) == 0
    return run_dir


@dataclass(frozen=True)
class CubeRuns:
    """A table1-like folder with a baseline and a PIF run of the cube cohort (same splits)."""

    root: Path
    manifest: Path
    cache: Path
    table1: Path
    baseline: Path
    pif: Path


def cube_runs(tmp_path_factory) -> CubeRuns:
    """Trained once per test session, for the interpret and predict tests alike."""
    root = tmp_path_factory.getbasetemp() / "cube-runs"
    cells = root / "table1" / "cells"
    runs = CubeRuns(
        root, root / "cohort" / "manifest.csv", root / "cache", root / "table1",
        cells / "adni-baseline-full", cells / "adni-pif-full",
    )  # fmt: skip
    if not (root / "done").is_file():
        cube_cohort(root / "cohort")
        train(runs.baseline, "baseline", runs.manifest, runs.cache)
        train(runs.pif, "pif", runs.manifest, runs.cache)
        (root / "done").touch()
    return runs


def one_line_error(capsys, *expected: str) -> str:
    """The command's stderr: exactly one line, `pifexp: error: ...`, holding every fragment."""
    err = capsys.readouterr().err
    assert err.startswith("pifexp: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, err
    return err

"""Fixtures that write tiny seeded NIfTI cohorts into tmp_path and run `pifexp data check`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
import pytest
from nifti_cohorts import TARGET_SHAPE, tiny_affine, tiny_volume, write_image

from pifexp.cli import main


@pytest.fixture
def cohort_dir(tmp_path: Path) -> Path:
    return tmp_path / "cohort"


@pytest.fixture
def make_cohort(cohort_dir: Path) -> Callable[..., Path]:
    """make_cohort(n_subjects=8, images_per_subject=1, ...) -> the manifest's path.

    Subjects alternate between the two classes; images are .nii.gz, paths relative.
    """

    def make(
        n_subjects: int = 8,
        images_per_subject: int = 1,
        classes: Sequence[str] = ("CN", "AD"),
        orientation: str = "RAS",
        name: str = "manifest.csv",
        seed: int = 0,
    ) -> Path:
        rows = []
        for subject in range(n_subjects):
            for visit in range(images_per_subject):
                relative = f"sub-{subject:02d}/ses-{visit}/t1.nii.gz"
                data = tiny_volume(seed + 100 * subject + visit)
                affine = tiny_affine(data.shape, orientation=orientation)
                write_image(cohort_dir / relative, data, affine)
                rows.append(
                    {
                        "subject_id": f"sub-{subject:02d}",
                        "session": f"ses-{visit}",
                        "path": relative,
                        "label": classes[subject % 2],
                        "age": 60 + subject,
                    }
                )
        manifest = cohort_dir / name
        separator = "\t" if name.endswith(".tsv") else ","
        pd.DataFrame(rows).to_csv(manifest, sep=separator, index=False)
        return manifest

    return make


def tiny_check_overrides(tmp_path: Path, manifest: Path | str, *overrides: str) -> list[str]:
    """`data check` settings for a tiny cohort: the 6x7x6 grid, one worker, no progress bars."""
    return [
        f"data.manifest={manifest}",
        "task=adni",
        f"data.cache_dir={tmp_path / 'cache'}",
        f"task.input_shape=[{','.join(map(str, TARGET_SHAPE))}]",
        "data.workers=1",
        "data.progress=false",
        *overrides,
    ]


@pytest.fixture
def check_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> Callable[..., tuple[int, str, str]]:
    """check_cli(manifest, *overrides) -> (exit code, stdout, stderr) of `pifexp data check`,
    in-process, on the tiny grid (6x7x6), one worker, no progress bars."""

    def run(manifest: Path | str, *overrides: str) -> tuple[int, str, str]:
        code = main(["data", "check", *tiny_check_overrides(tmp_path, manifest, *overrides)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def tiny_config(tmp_path: Path, compose_config) -> Callable[..., object]:
    """tiny_config(manifest, *overrides): the data check config for a tiny cohort (6x7x6 grid,
    one worker, no progress bars)."""

    def make(manifest: Path | str, *overrides: str):
        return compose_config(
            "data_check",
            tiny_check_overrides(tmp_path, manifest, *overrides),
        )

    return make

"""`pifexp data synth`: files and manifest, class balance, one grid, where the class signal lies,
byte-identical output, refusals, the montage and the data pipeline reading the cohort."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from cohort_files import (
    SMALL_GRID,
    TINY_GRID,
    folder_files,
    read_manifest,
    synth_overrides,
    volumes,
)

from pifexp.cli import main
from pifexp.data.grid import Grid, box_shortfall_mm, mni_brain_box
from pifexp.synthetic import COHORT_FILE, EFFECT_MAP_FILE, MANIFEST_FILE, cohort_grid


@pytest.fixture(scope="module")
def adni_cohort(tmp_path_factory) -> Path:
    """A tiny ADNI-like cohort through the command, as a user would make it."""
    folder = tmp_path_factory.mktemp("adni") / "cohort"
    argv = ["data", "synth", "task=adni", "data.synthetic.n_subjects=10", TINY_GRID]
    assert main([*argv, *synth_overrides(folder)]) == 0
    return folder


def test_command_writes_manifest_images_and_effect_map(adni_cohort: Path):
    manifest = read_manifest(adni_cohort)
    assert list(manifest.columns[:4]) == ["subject_id", "session", "path", "label"]
    assert {"age", "sex", "site", "severity"} <= set(manifest.columns)
    assert (adni_cohort / EFFECT_MAP_FILE).is_file()
    assert all((adni_cohort / path).is_file() for path in manifest["path"])
    assert not any(Path(path).is_absolute() for path in manifest["path"])
    assert folder_files(adni_cohort) == sorted(
        [MANIFEST_FILE, EFFECT_MAP_FILE, COHORT_FILE, *manifest["path"]]
    )
    # nothing left beside it: the hidden working folder was renamed into place
    assert [p.name for p in adni_cohort.parent.iterdir()] == [adni_cohort.name]


def test_adni_classes_visits_and_balance(adni_cohort: Path):
    manifest = read_manifest(adni_cohort)
    assert set(manifest["label"]) == {"CN", "AD"}
    assert manifest.groupby("subject_id")["label"].nunique().max() == 1  # one label per subject
    subjects = manifest.drop_duplicates("subject_id")
    assert (subjects["label"] == "AD").sum() == round(10 * 0.4902)
    assert len(manifest) == round(10 * 2.8169)  # the paper's 969 images of 344 subjects
    assert manifest.groupby("subject_id").size().max() > 1
    assert not manifest.duplicated(["subject_id", "session"]).any()
    assert (manifest.loc[manifest["label"] == "CN", "severity"] == 0).all()
    assert (manifest.loc[manifest["label"] == "AD", "severity"] > 0).all()
    # ages rise with the visits of a subject
    first, last = (manifest.groupby("subject_id")["age"].agg(f) for f in ("first", "last"))
    assert (last >= first).all()


def test_images_share_one_mni_grid(adni_cohort: Path):
    manifest = read_manifest(adni_cohort)
    images = [nib.load(adni_cohort / path) for path in manifest["path"]]
    effect = nib.load(adni_cohort / EFFECT_MAP_FILE)
    expected = cohort_grid([24, 28, 24], [182, 218, 182], [-0.5, -17.5, 18.5])
    for image in [*images, effect]:
        assert image.shape == expected.shape
        np.testing.assert_allclose(image.affine, expected.affine)
        assert image.header.get_sform(coded=True)[1] == 4  # NIfTI code 4: MNI 152
    assert {image.get_data_dtype() for image in images} == {np.dtype(np.int16)}
    assert box_shortfall_mm(Grid.of_image(images[0]), mni_brain_box(2)) == 0


def test_subjects_and_visits_differ(adni_cohort: Path):
    manifest = read_manifest(adni_cohort)
    data = volumes(adni_cohort, manifest).reshape(len(manifest), -1)
    brain = (data > 0).mean(axis=0) > 0.5
    assert brain.sum() > 100
    normalized = data[:, brain] / data[:, brain].mean(axis=1, keepdims=True)
    distances = np.abs(normalized[:, None, :] - normalized[None, :, :]).mean(axis=2)
    off_diagonal = distances[~np.eye(len(manifest), dtype=bool)]
    assert off_diagonal.min() > 0.01  # no two images alike, not even two visits of one subject


def test_mean_class_difference_lies_inside_the_effect_map(tmp_path: Path):
    folder = tmp_path / "strong"
    overrides = synth_overrides(
        folder,
        "data.synthetic.n_subjects=24",
        "data.synthetic.tasks.adni.images_per_subject=1",
        "data.synthetic.tasks.adni.effect_strength=3",
        SMALL_GRID,
    )
    assert main(["data", "synth", "task=adni", *overrides]) == 0
    manifest = read_manifest(folder)
    data = volumes(folder, manifest)
    effect = nib.load(folder / EFFECT_MAP_FILE).get_fdata(dtype=np.float32)
    brain = (data > 0).mean(axis=0) > 0.5
    # each image relative to its mean inside the brain: scanner gain is not the class signal
    normalized = data / np.array([v[brain].mean() for v in data])[:, None, None, None]
    ad = (manifest["label"] == "AD").to_numpy()
    difference = normalized[ad].mean(axis=0) - normalized[~ad].mean(axis=0)
    strongest = np.abs(difference[brain]) >= np.quantile(np.abs(difference[brain]), 0.98)
    in_effect = np.abs(effect[brain]) > 0.1 * np.abs(effect).max()
    assert in_effect.mean() < 0.2  # the effect map is local ...
    assert in_effect[strongest].mean() > 0.8  # ... and holds the largest class differences
    assert np.corrcoef(difference[brain], effect[brain])[0, 1] > 0.5
    # AD: ventricles larger (darker), so the strongest effect is negative
    assert effect[brain].min() < -abs(effect[brain].max())


def test_same_seed_gives_identical_bytes_with_any_worker_count(tmp_path: Path):
    common = ["task=ms", "data.synthetic.n_subjects=6", TINY_GRID, "data.synthetic.progress=false"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert (
        main(
            ["data", "synth", *common, f"data.synthetic.out_dir={one}", "data.synthetic.workers=1"]
        )
        == 0
    )
    assert (
        main(
            ["data", "synth", *common, f"data.synthetic.out_dir={two}", "data.synthetic.workers=2"]
        )
        == 0
    )
    names = folder_files(one)
    assert names == folder_files(two)
    match, mismatch, errors = filecmp.cmpfiles(one, two, names, shallow=False)
    assert mismatch == [] and errors == [] and len(match) == len(names)


def test_another_seed_gives_other_images(adni_cohort: Path, tmp_path: Path):
    other = tmp_path / "seed1"
    argv = [
        "data",
        "synth",
        "task=adni",
        "data.synthetic.n_subjects=10",
        TINY_GRID,
        "data.synthetic.seed=1",
    ]
    assert main([*argv, *synth_overrides(other)]) == 0
    first = read_manifest(adni_cohort)["path"][0]
    assert (adni_cohort / first).read_bytes() != (other / first).read_bytes()


def test_ms_lesions_in_patients_rarely_in_controls(tmp_path: Path):
    folder = tmp_path / "ms"
    overrides = synth_overrides(folder, "data.synthetic.n_subjects=12", SMALL_GRID)
    assert main(["data", "synth", "task=ms", *overrides]) == 0
    manifest = read_manifest(folder)
    assert set(manifest["label"]) == {"HC", "MS"}
    patients = manifest[manifest["label"] == "MS"]
    controls = manifest[manifest["label"] == "HC"]
    assert patients["lesion_count"].mean() > 5 * max(controls["lesion_count"].mean(), 1)
    assert patients["lesion_volume_ml"].mean() > controls["lesion_volume_ml"].mean()
    assert (patients["lesion_volume_ml"] > 0).sum() >= len(patients) - 1
    effect = nib.load(folder / EFFECT_MAP_FILE).get_fdata()
    assert effect.min() < 0  # lesions are T1-hypointense


def test_refuses_a_folder_with_other_files(tmp_path: Path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    argv = ["data", "synth", "task=adni", "data.synthetic.n_subjects=4", TINY_GRID]
    assert main([*argv, *synth_overrides(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("pifexp: error: data.synthetic.out_dir=")
    assert len(error.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_refuses_a_cohort_of_other_settings_and_reuses_its_own(tmp_path: Path, capsys):
    folder = tmp_path / "cohort"
    argv = [
        "data",
        "synth",
        "task=adni",
        "data.synthetic.n_subjects=4",
        TINY_GRID,
        *synth_overrides(folder),
    ]
    assert main(argv) == 0
    before = json.loads((folder / COHORT_FILE).read_text())
    capsys.readouterr()
    assert main(argv) == 0
    assert "already there" in capsys.readouterr().out
    assert main([*argv, "data.synthetic.seed=5"]) == 1
    assert "other settings" in capsys.readouterr().err
    assert json.loads((folder / COHORT_FILE).read_text()) == before


def test_bad_setting_exits_with_one_line(tmp_path: Path, capsys):
    argv = ["data", "synth", "task=adni", "data.synthetic.n_subjects=1", *synth_overrides(tmp_path)]
    assert main(argv) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("pifexp: error: data.synthetic.n_subjects=1") and "\n" not in error


def test_plot_writes_a_montage(adni_cohort: Path, tmp_path: Path):
    pytest.importorskip("matplotlib")
    folder = tmp_path / "plotted"
    argv = ["data", "synth", "task=adni", "data.synthetic.n_subjects=4", TINY_GRID]
    assert (
        main(
            [
                *argv,
                *synth_overrides(folder),
                "data.synthetic.plot=true",
                "data.synthetic.plot_subjects_per_class=1",
            ]
        )
        == 0
    )
    assert (folder / "montage.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_data_pipeline_accepts_the_cohort(adni_cohort: Path, compose_config):
    from pifexp.data.check import check_cohort
    from pifexp.data.manifest import read_manifest as read_checked_manifest

    cfg = compose_config("data_synth", ["task=adni"])
    manifest = read_checked_manifest(adni_cohort / MANIFEST_FILE, cfg.task.classes)
    assert set(manifest["label"]) == {0, 1}
    report = check_cohort(
        manifest,
        resample_to=None,
        affine_atol_mm=float(cfg.data.check.affine_atol_mm),
        mni_margin_mm=float(cfg.data.check.mni_margin_mm),
        mni_resolution=int(cfg.data.mni_resolution),
        workers=1,
        progress=False,
    )
    assert report.images == len(manifest)
    assert len(report.grids) == 1

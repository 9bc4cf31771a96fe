"""pifexp predict: a finished run applied to the images of a manifest, labels optional."""

import shutil

import numpy as np
import pandas as pd
import pytest
from apply_fixtures import cube_cohort, cube_runs, one_line_error

from pifexp.cli import main
from pifexp.experiments import rundir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return cube_runs(tmp_path_factory)


def _test_manifest(run_dir, seed, folder, labels=True):
    """The seed's own test images as a manifest of new images."""
    predictions = rundir.read_predictions(rundir.seed_dir(run_dir, seed))
    manifest = predictions[["subject_id", "path", "label"]].astype({"label": int})
    if not labels:
        manifest = manifest.drop(columns="label")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"test-seed{seed}{'' if labels else '-unlabelled'}.csv"
    manifest.to_csv(path, index=False)
    return path, predictions


def _predict(run_dir, manifest, tmp_path, *extra):
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    return main(["predict", str(run_dir), f"data.manifest={manifest}", cache, "data.progress=false",
                 *extra])  # fmt: skip


def test_predict_gives_the_runs_own_test_probabilities(runs, tmp_path, capsys):
    manifest, predictions = _test_manifest(runs.pif, 0, tmp_path)
    out = tmp_path / "out.csv"
    assert _predict(runs.pif, manifest, tmp_path, f"out={out}") == 0
    table = pd.read_csv(out)
    np.testing.assert_allclose(table["probability_seed0"], predictions["probability"], atol=1e-6)
    assert list(table["path"]) == list(predictions["path"])
    seeds = table[["probability_seed0", "probability_seed1"]]
    np.testing.assert_allclose(table["probability_mean"], seeds.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(table["probability_sd"], seeds.std(axis=1, ddof=1), rtol=1e-5)
    expected = np.where(table["probability_mean"] >= 0.5, "AD", "CN")
    assert list(table["predicted"]) == list(expected)
    assert list(table["class"]) == [["CN", "AD"][int(label)] for label in predictions["label"]]
    # the metrics: seed 0's are the run's own test metrics
    metrics = pd.read_csv(tmp_path / "out.metrics.csv")
    recorded = rundir.read_metrics(rundir.seed_dir(runs.pif, 0))
    seed0 = metrics[metrics.seed.astype(str) == "0"].iloc[0]
    for name in ("balanced_accuracy", "roc_auc"):
        assert seed0[name] == pytest.approx(recorded[name])
    assert "mean over seeds" in set(metrics.seed.astype(str))
    printed = capsys.readouterr().out
    assert "balanced_accuracy" in printed and str(out) in printed


def test_predict_without_labels(runs, tmp_path, capsys):
    manifest, predictions = _test_manifest(runs.baseline, 1, tmp_path, labels=False)
    assert _predict(runs.baseline, manifest, tmp_path) == 0
    written = rundir.prediction_path(runs.baseline, manifest)
    table = pd.read_csv(written)
    assert "label" not in table and "class" not in table
    np.testing.assert_allclose(table["probability_seed1"], predictions["probability"], atol=1e-6)
    assert set(table["predicted"]) <= {"CN", "AD"}
    assert not written.with_name(f"{written.stem}.metrics.csv").exists()
    assert "balanced_accuracy" not in capsys.readouterr().out


def test_a_missing_run_is_one_line(runs, tmp_path, capsys):
    assert _predict(tmp_path / "nowhere", runs.manifest, tmp_path) == 1
    one_line_error(capsys, "nowhere", "is not a folder")


def test_a_half_written_run_is_refused(runs, tmp_path, capsys):
    copy = shutil.copytree(runs.pif, tmp_path / "half")
    (copy / "seed-1" / rundir.METRICS_FILE).unlink()
    assert _predict(copy, runs.manifest, tmp_path) == 1
    one_line_error(capsys, "half-written", "seed-1")


@pytest.mark.parametrize(
    ("missing", "expected"),
    [(rundir.INPUT_FILE, "earlier pifexp version"), (f"seed-0/{rundir.NETWORK_FILE}", "missing")],
)
def test_a_run_of_an_earlier_version_is_refused(runs, tmp_path, capsys, missing, expected):
    copy = shutil.copytree(runs.baseline, tmp_path / "old")
    (copy / missing).unlink()
    assert _predict(copy, runs.manifest, tmp_path) == 1
    one_line_error(capsys, expected, missing.split("/")[-1])


def test_images_on_another_grid_are_refused(runs, tmp_path, capsys):
    shifted = cube_cohort(tmp_path / "shifted", subjects=4, offset_mm=10.0)
    assert _predict(runs.pif, shifted, tmp_path) == 1
    one_line_error(capsys, "was trained on", "grid")


def test_a_file_that_data_check_rejects_is_rejected_with_its_message(runs, tmp_path, capsys):
    broken = tmp_path / "broken.nii.gz"
    broken.write_text("not an image")
    (tmp_path / "new").mkdir()
    unlabelled = tmp_path / "new" / "manifest.csv"
    pd.DataFrame({"subject_id": ["s1"], "path": [str(broken)]}).to_csv(unlabelled, index=False)
    assert _predict(runs.pif, unlabelled, tmp_path) == 1
    predicted = one_line_error(capsys, "broken.nii.gz")
    # the same row, labelled, beside a good image: pifexp data check says the same
    (tmp_path / "check").mkdir()
    labelled = tmp_path / "check" / "manifest.csv"
    good = runs.manifest.parent / pd.read_csv(runs.manifest)["path"].iloc[1]
    pd.DataFrame({"subject_id": ["s1", "s2"], "path": [str(broken), str(good)],
                  "label": ["CN", "AD"]}).to_csv(labelled, index=False)  # fmt: skip
    assert main(["data", "check", "task=adni", f"data.manifest={labelled}",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.progress=false"]) == 1  # fmt: skip
    assert one_line_error(capsys) == predicted


def test_the_manifest_is_required(runs, capsys):
    assert main(["predict", str(runs.pif)]) == 1
    one_line_error(capsys, "data.manifest is required")

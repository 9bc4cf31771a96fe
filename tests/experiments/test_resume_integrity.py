"""A resumed run must prove its inputs are the same, and a per-seed file that does not read back
whole means the seed is not done: killed, corrupted and rerun, a run ends as if uninterrupted."""

import json

import pandas as pd
import pytest

from pifexp.cli import main


def train(overrides, run_dir, *extra):
    return main(["train", "task=adni", "model=pif", *overrides, f"hydra.run.dir={run_dir}", *extra])


def numbers(run_dir):
    return pd.read_csv(run_dir / "results.csv").drop(columns="seconds")


@pytest.fixture
def finished(tiny_train_overrides, tmp_path):
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir) == 0
    return run_dir


@pytest.mark.parametrize("damage", ["{}", '{"seed": 1, "balanced_acc', "", "[1, 2]"])
def test_a_seed_whose_metrics_do_not_read_back_is_trained_again(
    finished, tiny_train_overrides, capsys, damage
):
    first = numbers(finished)
    (finished / "seed-1" / "metrics.json").write_text(damage)
    capsys.readouterr()
    assert train(tiny_train_overrides, finished) == 0
    out = capsys.readouterr().out
    assert "seed 0: done earlier, skipped" in out and "seed 1: done earlier" not in out
    assert json.loads((finished / "seed-1" / "metrics.json").read_text())["seed"] == 1
    pd.testing.assert_frame_equal(numbers(finished), first)


def test_a_manifest_rewritten_in_place_is_not_mixed_into_the_run(tmp_path, capsys):
    # a cohort of one's own whose manifest is rewritten with other subjects at the same path
    cohort = tmp_path / "cohort"
    common = ["task=adni", "profile=quick", "task.input_shape=[32,38,32]",
              f"data.cache_dir={tmp_path / 'cache'}", "data.progress=false"]  # fmt: skip
    synth = ["data", "synth", *common, "data.synthetic.progress=false"]
    assert main([*synth, "data.synthetic.n_subjects=16", f"data.synthetic.out_dir={cohort}"]) == 0
    other = tmp_path / "other"
    assert main([*synth, "data.synthetic.n_subjects=18", f"data.synthetic.out_dir={other}"]) == 0
    manifest = tmp_path / "manifest.csv"
    table = pd.read_csv(cohort / "manifest.csv", dtype=str)
    table["path"] = [str(cohort / p) for p in table["path"]]
    table.to_csv(manifest, index=False)
    run = ["train", "model=pif", *common, "data=manifest", f"data.manifest={manifest}",
           "trainer.seeds=1", "trainer.max_epochs=2", "trainer.ignore_before=0",
           "trainer.patience=1", "trainer.batch_size=4", "trainer.progress=false",
           f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    assert main(run) == 0
    before = (tmp_path / "run" / "results.csv").read_bytes()
    table = pd.read_csv(other / "manifest.csv", dtype=str)
    table["path"] = [str(other / p) for p in table["path"]]
    table.to_csv(manifest, index=False)
    capsys.readouterr()
    assert main([*run, "trainer.seeds=2"]) == 1
    err = capsys.readouterr().err
    assert "trained on another cohort" in err and str(manifest) in err and "Traceback" not in err
    assert (tmp_path / "run" / "results.csv").read_bytes() == before
    assert not (tmp_path / "run" / "seed-1").exists()

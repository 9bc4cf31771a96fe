"""Watching a run: epochs.csv grows as epochs end, the run's log holds what the screen shows,
a seed that hit the epoch cap says so, covariates per partition, sweep folders that say which
job is which."""

import pandas as pd
import pytest

import pifexp.experiments.run as run_module
from pifexp.cli import main


def train(overrides, run_dir, *extra):
    return main(["train", "task=adni", "model=pif", *overrides, f"hydra.run.dir={run_dir}", *extra])


def test_epochs_csv_has_a_row_per_finished_epoch_while_the_seed_runs(
    tiny_train_overrides, tmp_path, monkeypatch
):
    seen = []
    append = run_module.rundir.append_epoch

    def watched(path, row):
        append(path, row)
        seen.append((int(row["epoch"]), len(pd.read_csv(path))))  # read as a watcher would

    monkeypatch.setattr(run_module.rundir, "append_epoch", watched)
    assert train(tiny_train_overrides, tmp_path / "run", "trainer.seeds=1") == 0
    assert seen and all(rows == epoch + 1 for epoch, rows in seen)
    final = pd.read_csv(tmp_path / "run" / "seed-0" / "epochs.csv")
    assert len(final) == seen[-1][1]


def test_a_seed_that_reached_the_cap_says_so_and_the_log_keeps_it(
    tiny_train_overrides, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    # patience 5 from epoch 0 cannot stop 3 epochs: the cap ends training
    assert train(tiny_train_overrides, run_dir, "trainer.seeds=1", "trainer.patience=5") == 0
    out = capsys.readouterr().out
    assert "seed 0: " in out and "reached the epoch cap at epoch 2 without stopping early" in out
    assert "early stopping at epoch" not in out
    assert f"run folder: {run_dir}" in out
    log = (run_dir / "train.log").read_text()
    assert "reached the epoch cap" in log and f"run folder: {run_dir}" in log
    assert "results.csv" in log
    # the summary says that its early-stopping epoch is the cap's
    summary = (run_dir / "summary.md").read_text()
    assert "1 of 1 seeds reached the epoch cap without stopping early" in summary


def test_covariates_per_partition(tiny_train_overrides, tmp_path):
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir, "trainer.seeds=1") == 0
    balance = pd.read_csv(run_dir / "seed-0" / "covariates.csv")
    assert list(balance.columns) == ["covariate", "statistic", "train", "val", "test"]
    age = balance[balance.covariate == "age"].set_index("statistic")
    assert set(age.index) == {"mean", "sd", "n"} and (age.loc["mean"][["train", "val"]] > 40).all()
    labels = balance[balance.covariate == "label"]
    split = pd.read_json(run_dir / "seed-0" / "split.json", typ="series")
    results = pd.read_csv(run_dir / "results.csv")
    assert labels["test"].sum() == results.test_images[0] and len(split["test"]) > 0
    assert set(balance.covariate) >= {"age", "sex", "site", "label"}


def test_sweep_folders_name_task_and_model(tiny_train_overrides, tmp_path):
    sweep = tmp_path / "sweep"
    assert main(["train", "-m", "task=adni", "model=baseline,pif", *tiny_train_overrides,
                 "trainer.seeds=1", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}"]) == 0
    names = sorted(path.name for path in sweep.iterdir() if path.is_dir())
    assert names[0].startswith("0-adni-baseline-") and names[1].startswith("1-adni-pif-")


def test_tensorboard_event_files_per_seed(tiny_train_overrides, tmp_path):
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir, "trainer.tensorboard=true") == 0
    for seed in (0, 1):
        events = list((run_dir / f"seed-{seed}" / "tensorboard").glob("events.out.tfevents.*"))
        assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(run_dir / "seed-0" / "tensorboard"))
    accumulator.Reload()
    epochs = pd.read_csv(run_dir / "seed-0" / "epochs.csv")
    tags = set(accumulator.Tags()["scalars"])
    wanted = {"loss/train", "loss/validation", "balanced_accuracy/validation", "learning_rate"}
    assert wanted <= tags
    assert len(accumulator.Scalars("loss/validation")) == len(epochs)


def test_tensorboard_without_its_package_is_one_line(
    tiny_train_overrides, tmp_path, capsys, monkeypatch
):
    import builtins

    real_import = builtins.__import__

    def no_tensorboard(name, *args, **kwargs):
        if name.startswith("torch.utils.tensorboard"):
            raise ImportError("No module named 'tensorboard'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tensorboard)
    assert train(tiny_train_overrides, tmp_path / "run", "trainer.tensorboard=true") == 1
    err = capsys.readouterr().err
    assert "trainer.tensorboard=true needs TensorBoard" in err and "Traceback" not in err
    assert not (tmp_path / "run" / "seed-0").exists()

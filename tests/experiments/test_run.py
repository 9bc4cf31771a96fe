import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from pifexp.cli import main
from pifexp.experiments.specs import network_spec_of
from pifexp.models import build_model

REQUIRED = ["seed", "balanced_accuracy", "early_stopping_epoch", "roc_auc", "sensitivity",
            "specificity", "train_subjects"]  # fmt: skip


def train(overrides, run_dir, *extra):
    return main(["train", "task=adni", "model=pif", *overrides, f"hydra.run.dir={run_dir}", *extra])


def numbers(run_dir):
    return pd.read_csv(run_dir / "results.csv").drop(columns="seconds")


def test_train_writes_every_seed_and_the_tables(tiny_train_overrides, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir) == 0
    out = capsys.readouterr().out
    assert "not the paper's data" in out  # the table row names its data source

    results = pd.read_csv(run_dir / "results.csv")
    assert set(REQUIRED) <= set(results.columns)
    assert list(results.seed) == [0, 1]
    assert results.balanced_accuracy.between(0, 1).all()
    summary = pd.read_csv(run_dir / "summary.csv")
    assert summary.balanced_accuracy_mean[0] == pytest.approx(results.balanced_accuracy.mean())
    assert "synthetic" in summary.data_source[0]
    assert "synthetic" in (run_dir / "summary.md").read_text()

    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.task.input_shape == [32, 38, 32] and cfg.data.manifest.endswith("manifest.csv")
    for seed in (0, 1):
        seed_dir = run_dir / f"seed-{seed}"
        split = json.loads((seed_dir / "split.json").read_text())
        members = [set(split[name]) for name in ("train", "val", "test")]
        assert all(members) and not (members[0] & members[1] or members[0] & members[2])
        epochs = pd.read_csv(seed_dir / "epochs.csv")
        assert list(epochs.columns) == ["epoch", "train_loss", "val_loss", "val_balanced_accuracy",
                                        "steps", "seconds"]  # fmt: skip
        assert epochs.steps.is_monotonic_increasing and epochs.seconds.is_monotonic_increasing
        metrics = json.loads((seed_dir / "metrics.json").read_text())
        assert metrics["epochs_trained"] == len(epochs)
        # distinct subjects per partition; the test predictions name their images
        assert [metrics[f"{p}_subjects"] for p in ("train", "val", "test")] == [
            len(split[p]) for p in ("train", "val", "test")
        ]
        predictions = pd.read_csv(seed_dir / "test_predictions.csv", dtype={"subject_id": str})
        assert set(predictions.subject_id) == set(split["test"])
        assert len(predictions) == metrics["test_images"] and predictions.path.str.len().min() > 0
        # early stopping with patience 1 from epoch 0: the stop comes one epoch after the best
        assert metrics["early_stopping_epoch"] == epochs.epoch.iloc[-1]
        state = torch.load(seed_dir / "best.pt", weights_only=True)
        model = build_model(network_spec_of(cfg))
        model.load_state_dict(state)


def test_the_same_command_gives_the_same_numbers_on_cpu(tiny_train_overrides, tmp_path):
    assert train(tiny_train_overrides, tmp_path / "a") == 0
    assert train(tiny_train_overrides, tmp_path / "b") == 0
    pd.testing.assert_frame_equal(numbers(tmp_path / "a"), numbers(tmp_path / "b"))


def test_rerun_skips_finished_seeds_and_redoes_an_interrupted_one(
    tiny_train_overrides, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir) == 0
    first = numbers(run_dir)
    kept = (run_dir / "seed-0" / "best.pt").stat().st_mtime_ns
    (run_dir / "seed-1" / "metrics.json").unlink()  # as if killed before seed 1 finished
    capsys.readouterr()

    assert train(tiny_train_overrides, run_dir) == 0
    assert "seed 0: done earlier, skipped" in capsys.readouterr().out
    assert (run_dir / "seed-0" / "best.pt").stat().st_mtime_ns == kept
    assert (run_dir / "seed-1" / "metrics.json").exists()
    pd.testing.assert_frame_equal(numbers(run_dir), first)


def test_more_seeds_extend_a_finished_run(tiny_train_overrides, tmp_path):
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir, "trainer.seeds=1") == 0
    assert train(tiny_train_overrides, run_dir, "trainer.seeds=2") == 0
    assert list(pd.read_csv(run_dir / "results.csv").seed) == [0, 1]


def test_resuming_with_other_settings_is_refused(tiny_train_overrides, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir, "trainer.seeds=1") == 0
    before = (run_dir / "results.csv").read_bytes()
    capsys.readouterr()
    assert train(tiny_train_overrides, run_dir, "trainer.seeds=1", "trainer.lr=0.01") == 1
    err = capsys.readouterr().err
    assert "other settings" in err and "trainer.lr" in err and "Traceback" not in err
    assert (run_dir / "results.csv").read_bytes() == before


def test_multirun_sweep_gives_one_run_folder_each(tiny_train_overrides, tmp_path):
    sweep = tmp_path / "sweep"
    code = main(
        ["train", "-m", "task=adni", "model=baseline,pif", "trainer.lr=1e-4,5e-5",
         *tiny_train_overrides, "trainer.seeds=1", f"hydra.sweep.dir={sweep}"]
    )  # fmt: skip
    assert code == 0
    runs = sorted(path.parent for path in sweep.glob("*/results.csv"))
    assert len(runs) == 4
    chosen = {
        (OmegaConf.load(r / "config.yaml").model.name, OmegaConf.load(r / "config.yaml").trainer.lr)
        for r in runs
    }
    assert chosen == {("baseline", 1e-4), ("baseline", 5e-5), ("pif", 1e-4), ("pif", 5e-5)}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.no_such_setting=1", "no_such_setting"),
        ("trainer.device=tpu", "trainer.device='tpu'"),
    ],
)
def test_bad_settings_fail_with_one_line(tiny_train_overrides, tmp_path, capsys, override, message):
    assert train(tiny_train_overrides, tmp_path / "run", override) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_missing_manifest_names_the_file(tmp_path, capsys):
    missing = tmp_path / "nowhere" / "manifest.csv"
    code = main(
        ["train", "data=manifest", f"data.manifest={missing}", f"hydra.run.dir={tmp_path / 'run'}"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert str(missing) in err and "Traceback" not in err


def test_a_partition_without_both_classes_is_an_error(tiny_train_overrides, tmp_path, capsys):
    code = train(tiny_train_overrides, tmp_path / "run", "data.synthetic.n_subjects=4")
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("pifexp: error: ") and "Traceback" not in err


def test_scirep2021_protocol_searches_and_tests_the_winner(tiny_train_overrides, tmp_path):
    run_dir = tmp_path / "run"
    code = train(
        tiny_train_overrides, run_dir, "protocol=scirep2021", "trainer.seeds=1",
        "protocol.search.runs=2", "protocol.search.window=2", "trainer.ignore_before=0",
        "trainer.max_epochs=3",
    )  # fmt: skip
    assert code == 0
    search = pd.read_csv(run_dir / "seed-0" / "search.csv")
    assert len(search) == 2 and set(search.batch_size) <= {4, 6, 12}
    assert set(search.lr) <= {1e-4, 5e-5} and set(search.patience) <= {12, 16}
    metrics = json.loads((run_dir / "seed-0" / "metrics.json").read_text())
    winner = search.iloc[search.score.idxmax()]
    assert metrics["early_stopping_epoch"] == winner.early_stopping_epoch
    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.model.overlap and cfg.model.activation == "elu"
    network = json.loads((run_dir / "seed-0" / "network.json").read_text())
    assert network["pif"]["overlap"] and network["activation"] == "elu"
    assert cfg.protocol.name == "scirep2021"
    assert "scirep2021" in (run_dir / "summary.md").read_text()


def test_paper2019_protocol_applies_the_cells_settings(tiny_train_overrides, tmp_path):
    run_dir = tmp_path / "run"
    small = ["protocol=paper2019", "setting=small", "data.subset=0.5", "trainer.seeds=1",
             "trainer.max_epochs=2"]
    # the tiny settings' patience and ignore_before are dropped, so the cell's apply
    overrides = [
        o for o in tiny_train_overrides if not o.startswith(("trainer.patience", "trainer.ignore"))
    ]
    assert train(overrides, run_dir, *small) == 0
    cfg = OmegaConf.load(run_dir / "config.yaml")
    # adni / pif / small in the 2019 notebooks: patience 12, ignore_before 20, flips only
    assert (cfg.trainer.patience, cfg.trainer.ignore_before) == (12, 20)
    # given on the command line: kept (the cell has batch 12 and 200 epochs)
    assert (cfg.trainer.batch_size, cfg.trainer.max_epochs) == (4, 2)
    assert cfg.task.augment.flip_p == 0.5 and not cfg.task.augment.pif_shift
    assert cfg.protocol.selection == "last" and cfg.model.dropout == 0.3
    assert "paper2019" in (run_dir / "summary.md").read_text()
    metrics = json.loads((run_dir / "seed-0" / "metrics.json").read_text())
    assert metrics["best_epoch"] == metrics["early_stopping_epoch"]  # the last model is tested


def test_the_cpu_estimate_times_the_second_epoch():
    from pifexp.experiments.run import timed_epoch

    # the first epoch (5 s, one-off costs included) is not the one timed; the second (2 s) is
    assert timed_epoch({"epoch": 0, "seconds": 5.0}, 0.0, max_epochs=10) is None
    assert timed_epoch({"epoch": 1, "seconds": 7.0}, 5.0, max_epochs=10) == pytest.approx(2.0)
    assert timed_epoch({"epoch": 2, "seconds": 9.0}, 7.0, max_epochs=10) is None
    # a single epoch is all there is to time
    assert timed_epoch({"epoch": 0, "seconds": 5.0}, 0.0, max_epochs=1) == pytest.approx(5.0)


def test_a_cpu_run_says_how_long_it_may_take(tiny_train_overrides, tmp_path):
    run_dir = tmp_path / "run"
    assert train(tiny_train_overrides, run_dir, "trainer.device=cpu") == 0
    log = (run_dir / "train.log").read_text()
    assert log.count("an epoch takes about") == 1  # once per run, from its first seed


def test_a_last_training_batch_of_one_image_is_left_out(tiny_train_overrides, tmp_path):
    # 3^3 patches give the PIF layer's BatchNorm one value per channel and image: a batch of one
    # image cannot train it, so a last batch of one is left out (the order is shuffled each epoch)
    run_dir = tmp_path / "run"
    overrides = [o for o in tiny_train_overrides if not o.startswith("trainer.batch_size")]
    assert train(overrides, run_dir, "model.pif.patch_size=3", "trainer.seeds=1") == 0
    metrics = json.loads((run_dir / "seed-0" / "metrics.json").read_text())
    train_images = metrics["train_images"]
    batch_size = next(b for b in range(2, train_images) if train_images % b == 1)
    again = tmp_path / "again"
    assert train(overrides, again, "model.pif.patch_size=3", "trainer.seeds=1",
                 f"trainer.batch_size={batch_size}") == 0  # fmt: skip
    epochs = pd.read_csv(again / "seed-0" / "epochs.csv")
    assert (epochs.steps.diff().dropna() == train_images // batch_size).all()

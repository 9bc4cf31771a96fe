"""The composed config becomes checked specs: bad settings stop a command before any work, and
the per-cell settings are Hydra's composition (command-line overrides win)."""

import pytest

from pifexp.cli import main
from pifexp.errors import ConfigError
from pifexp.experiments.specs import run_spec, trainer_spec


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.seeds=0", "trainer.seeds=0 must be an integer >= 1"),
        ("trainer.seeds=abc", "trainer.seeds='abc' must be an integer >= 1"),
        ("trainer.seeds=2.7", "trainer.seeds=2.7 must be an integer >= 1"),
        ("trainer.first_seed=-1", "trainer.first_seed=-1 must be an integer >= 0"),
        ("trainer.lr=-0.001", "trainer.lr=-0.001 must be a number > 0"),
        ("trainer.max_epochs=0", "trainer.max_epochs=0 must be an integer >= 1"),
        ("trainer.bf16=maybe", "trainer.bf16='maybe' must be one of auto, true, false"),
        ("trainer.num_threads=0", "trainer.num_threads=0 must be an integer >= 1"),
        ("data.device_memory_fraction=2", "data.device_memory_fraction=2.0 must lie in (0, 1]"),
        ("model.dropout=1.5", "model.dropout=1.5 must lie in [0, 1)"),
        ("task.preprocess.normalize=minmax", "task.preprocess.normalize='minmax'"),
    ],
)
def test_bad_settings_stop_before_any_work(tmp_path, capsys, override, message):
    run_dir = tmp_path / "run"
    code = main(["train", "task=adni", "model=pif", override, f"hydra.run.dir={run_dir}",
                 f"data.synthetic.cache_dir={tmp_path / 'cohorts'}"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("pifexp: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    # nothing was generated, cached or trained
    assert not (tmp_path / "cohorts").exists() and not (run_dir / "config.yaml").exists()


def test_trainer_spec_rejects_an_unknown_key(compose_config):
    cfg = compose_config("train", ["+trainer.momentum=0.9"])
    with pytest.raises(ConfigError, match="momentum"):
        trainer_spec(cfg)


def test_the_setting_and_the_subset_must_agree(compose_config):
    assert run_spec(compose_config("train", ["setting=small"])).subset == 0.2
    assert run_spec(compose_config("train", ["setting=small", "data.subset=0.1"])).subset == 0.1
    with pytest.raises(ConfigError, match="data.subset=0.2 does not fit setting=full.*small"):
        run_spec(compose_config("train", ["data.subset=0.2"]))
    with pytest.raises(ConfigError, match="data.subset=1.0 does not fit setting=small"):
        run_spec(compose_config("train", ["setting=small", "data.subset=1.0"]))


@pytest.mark.parametrize(
    ("cell", "batch", "lr", "weight_decay", "patience", "ignore_before", "flip_p", "shift"),
    [
        # the 2019 notebooks: configs/protocol_cells/paper2019/
        (["task=ukb", "model=baseline"], 4, 1e-4, 0.0, 8, 40, 0.0, (0, 0)),
        (["task=ukb", "model=pif", "setting=small"], 12, 1e-5, 1e-4, 8, 15, 0.0, (0, 0)),
        (["task=adni", "model=baseline", "setting=small"], 12, 1e-4, 1e-4, 12, 65, 0.5, (-2, 3)),
        (["task=adni", "model=pif"], 6, 1e-4, 1e-4, 12, 5, 0.5, (0, 0)),
        (["task=ms", "model=pif"], 4, 1e-4, 1e-4, 16, 5, 0.0, (0, 0)),
    ],
)
def test_paper2019_composes_each_cells_settings(
    compose_config, cell, batch, lr, weight_decay, patience, ignore_before, flip_p, shift
):
    spec = run_spec(compose_config("train", ["protocol=paper2019", "profile=quick", *cell]))
    trainer = spec.trainer
    assert (trainer.batch_size, trainer.lr, trainer.weight_decay) == (batch, lr, weight_decay)
    assert (trainer.patience, trainer.ignore_before, trainer.max_epochs) == (
        patience, ignore_before, 200,
    )  # fmt: skip
    assert trainer.selection == "last" and spec.network.dropout == 0.3
    assert (spec.augment.flip_p, spec.augment.shift_range) == (flip_p, shift)


def test_command_line_settings_win_over_a_cells_settings(compose_config):
    overrides = ["protocol=paper2019", "task=adni", "model=pif", "trainer.batch_size=3",
                 "model.dropout=0.1", "task.augment.flip_p=0.25"]  # fmt: skip
    spec = run_spec(compose_config("train", overrides))
    assert spec.trainer.batch_size == 3 and spec.trainer.patience == 12
    assert spec.network.dropout == 0.1 and spec.augment.flip_p == 0.25


def test_other_protocols_have_no_cell_settings(compose_config):
    fair = run_spec(compose_config("train", ["task=ukb", "model=baseline"]))
    assert (fair.trainer.batch_size, fair.trainer.patience, fair.trainer.ignore_before) == (
        8, 12, 10,
    )  # fmt: skip
    assert fair.trainer.selection == "best_val_loss" and fair.search is None
    scirep = run_spec(compose_config("train", ["protocol=scirep2021"]))
    assert scirep.search is not None and scirep.search.runs == 5
    assert scirep.network.pif is not None and scirep.network.pif.overlap

"""The composed config becomes checked specs: bad settings stop a command before any work, and
the per-cell settings are Hydra's composition (command-line overrides win)."""

import numpy as np
import pandas as pd
import pytest

from pifexp.cli import main
from pifexp.data.splits import ROWS_MARK, draw_split, partition_rows, subject_labels
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
        ("trainer.stopping_rule=nitorch",
         "trainer.stopping_rule='nitorch' must be one of loss_first, patience_first"),
        ("data.subset_unit=visit", "data.subset_unit='visit' must be one of subject, image"),
        ("task.split.test_per_class=30", "task.split.test_fraction=0.2 and "
         "task.split.test_per_class=30: set exactly one of them"),
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


def adni_like_cohort(ad: int = 193, cn: int = 151) -> pd.DataFrame:
    """The paper's ADNI cohort's subjects (193 AD, 151 CN), 1..5 images each."""
    rng = np.random.default_rng(0)
    rows = [
        {"subject_id": f"s{subject:03d}", "label": int(subject < ad), "session": str(visit)}
        for subject in range(ad + cn)
        for visit in range(rng.integers(1, 6))
    ]
    return pd.DataFrame(rows)


def class_counts(frame: pd.DataFrame, members: list[str]) -> list[int]:
    labels = subject_labels(frame)[[member.split(ROWS_MARK)[0] for member in members]]
    return [int((labels == 0).sum()), int((labels == 1).sum())]


@pytest.mark.parametrize("setting", ["full", "small"])
def test_paper2019_adni_split_has_30_plus_30_test_and_18_plus_18_validation_subjects(
    compose_config, setting
):
    cfg = compose_config("train", ["protocol=paper2019", "task=adni", "model=baseline",
                                   f"setting={setting}"])  # fmt: skip
    spec = run_spec(cfg).split
    frame = adni_like_cohort()
    for seed in (0, 1):
        split = draw_split(frame, spec, seed)
        assert class_counts(frame, split["test"]) == [30, 30]
        assert class_counts(frame, split["val"]) == [18, 18]
    # the quick profile's 72-subject cohort keeps the shares: 6 + 6 and 4 + 4
    quick = adni_like_cohort(36, 36)
    split = draw_split(quick, spec, 0)
    assert class_counts(quick, split["test"]) == [6, 6]
    assert class_counts(quick, split["val"]) == [4, 4]


def test_paper2019_small_subsets_follow_the_authors_per_task(compose_config):
    frame = adni_like_cohort()
    adni = run_spec(compose_config("train", ["protocol=paper2019", "task=adni", "setting=small"]))
    full = run_spec(compose_config("train", ["protocol=paper2019", "task=adni"]))
    small_split, full_split = draw_split(frame, adni.split, 0), draw_split(frame, full.split, 0)
    # ADNI: 20% of the training images, validation and test unchanged
    assert (adni.split.subset_unit, adni.split.subset_scope) == ("image", "train")
    assert small_split["val"] == full_split["val"] and small_split["test"] == full_split["test"]
    images = {name: len(partition_rows(frame, split)["train"])
              for name, split in (("small", small_split), ("full", full_split))}  # fmt: skip
    assert images["small"] == round(0.2 * images["full"])
    # UKB: 20% of every subject before the test split, so validation and test shrink too
    ukb = run_spec(compose_config("train", ["protocol=paper2019", "task=ukb", "setting=small"]))
    ukb_full = run_spec(compose_config("train", ["protocol=paper2019", "task=ukb"]))
    assert (ukb.split.subset_unit, ukb.split.subset_scope) == ("subject", "cohort")
    people = adni_like_cohort().drop_duplicates("subject_id")  # one image per subject, as UKB
    small, whole = draw_split(people, ukb.split, 0), draw_split(people, ukb_full.split, 0)
    for name in ("val", "test"):
        assert len(small[name]) < 0.3 * len(whole[name])
    # the fair protocol: 20% of the training subjects for every task
    fair = run_spec(compose_config("train", ["task=ukb", "setting=small"])).split
    assert (fair.subset, fair.subset_unit, fair.subset_scope) == (0.2, "subject", "train")


def test_paper2019_keeps_one_split_and_nitorchs_stopping_rule(compose_config):
    spec = run_spec(compose_config("train", ["protocol=paper2019", "task=ukb", "model=pif",
                                             "trainer.first_seed=3"]))  # fmt: skip
    assert spec.split.fixed_seed == 3 and spec.trainer.stopping_rule == "patience_first"
    frame = adni_like_cohort().drop_duplicates("subject_id")
    splits = [draw_split(frame, spec.split, 3 + k) for k in range(10)]
    assert all(split == splits[0] for split in splits)
    assert spec.architecture == "PIF-A (2019 code)" and spec.network.head_activation == "none"
    fair = run_spec(compose_config("train", ["task=ukb", "model=pif"]))
    assert fair.split.fixed_seed is None and fair.trainer.stopping_rule == "loss_first"
    assert fair.architecture == "PIF-A" and fair.network.head_activation == "relu"
    # and the fair protocol can keep one split too, when asked
    fixed = run_spec(compose_config("train", ["task=ukb", "task.split.fixed_seed=0"]))
    assert fixed.split.fixed_seed == 0

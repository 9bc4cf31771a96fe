"""protocol=paper2019 end to end on a tiny cohort: the 2019 networks, nitorch's stopping rule, one
split for every repeat (labelled in summary.md) and ADNI's small subset drawn by image."""

import json

import pandas as pd
from omegaconf import OmegaConf

from pifexp.cli import main
from pifexp.data.splits import ROWS_MARK
from pifexp.experiments.summary import summary_markdown


def test_an_adni_small_cell_replays_the_2019_protocol(tiny_train_overrides, tmp_path):
    run_dir = tmp_path / "run"
    code = main(["train", "task=adni", "model=pif", "setting=small", "protocol=paper2019",
                 *tiny_train_overrides, f"hydra.run.dir={run_dir}"])  # fmt: skip
    assert code == 0

    cfg = OmegaConf.load(run_dir / "config.yaml")
    assert cfg.trainer.stopping_rule == "patience_first"
    network = json.loads((run_dir / "seed-0" / "network.json").read_text())
    assert network["architecture"] == "PIF (quick, 2019 code style)"
    assert (network["activation"], network["batch_norm"], network["head_activation"]) == (
        "elu", False, "none",
    )  # fmt: skip
    summary = (run_dir / "summary.md").read_text()
    assert "One split for every repeat" in summary

    splits = [json.loads((run_dir / f"seed-{seed}" / "split.json").read_text()) for seed in (0, 1)]
    assert splits[0] == splits[1]
    manifest = pd.read_csv(cfg.data.manifest, dtype={"subject_id": str})
    results = pd.read_csv(run_dir / "results.csv")
    train_subjects = [member.split(ROWS_MARK)[0] for member in splits[0]["train"]]
    images_of_train_subjects = int(manifest.subject_id.isin(train_subjects).sum())
    # 20% of the training images, by image: fewer images than their subjects have
    assert (results.train_images < images_of_train_subjects).all()
    assert (results.train_subjects == len(train_subjects)).all()
    # 30 + 30 test and 18 + 18 validation subjects of 344: 1 + 1 and 1 + 1 of these 16
    assert (results.test_subjects == 2).all() and (results.val_subjects == 2).all()
    # the run reports what each seed trained on: one split, so one count of each
    images = int(results.train_images.iloc[0])
    assert "Training images used: 20% (drawn by image)" in summary
    assert (
        f"Per seed: {len(train_subjects)} distinct training subjects, {images} training images."
        in summary
    )
    assert main(["report", str(run_dir), f"out_dir={tmp_path / 'report'}"]) == 0
    table = (tmp_path / "report" / "table1.md").read_text()
    assert f"| 20% of images: {len(train_subjects)} subjects, {images} images |" in table


def test_summary_says_when_every_repeat_had_one_split():
    row = {"task": "ms", "architecture": "PIF-C", "model": "pif", "protocol": "fair",
           "data_source": "synthetic", "subset": 1.0, "seeds": 3,
           "balanced_accuracy_mean": 0.7, "balanced_accuracy_std": 0.1,
           "early_stopping_epoch_mean": 20.0, "early_stopping_epoch_std": 2.0,
           "roc_auc_mean": 0.8, "roc_auc_std": 0.05}  # fmt: skip
    fixed = summary_markdown(pd.DataFrame([{**row, "fixed_split_seed": 4}]))
    assert "One split for every repeat** (drawn with seed 4" in fixed
    assert "One split" not in summary_markdown(pd.DataFrame([{**row, "fixed_split_seed": None}]))

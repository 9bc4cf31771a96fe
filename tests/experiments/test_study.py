"""pifexp study: each study's grid trained end to end on a tiny cohort (a Hydra multirun of
`pifexp train` cells), its tables and figures, resuming after a kill, cohorts of one's own, and
the study's statistics checked against cells written with known numbers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pifexp.cli import main
from pifexp.config_dir import config_dir
from pifexp.experiments.cells import training_config
from pifexp.experiments.study import STUDY_FILE, cell_config, study_settings

# small enough for a few seconds per cell on a CPU: 20 subjects, 2 seeds of 2 epochs
TINY = [
    "profile=quick", "data.synthetic.n_subjects=20", "trainer.seeds=2", "trainer.max_epochs=2",
    "trainer.ignore_before=0", "trainer.patience=1", "trainer.batch_size=4",
    "trainer.num_threads=1", "trainer.progress=false", "data.progress=false",
]  # fmt: skip
# two levels (or arms) of each study: every config is composed, trained and reported
GRIDS = {
    "registration": ["data.synthetic.misregistration.sd_mm=0,6"],
    "signal": ["level=signal/atrophy,signal/lesions"],
    "samples": ["data.train_subjects=4,all"],
    "ablation": [],  # every arm: each ablation's network is built and trained
}
ABLATION_ARMS = 8
KILL_TIMEOUT_S = 300


def study_args(name: str, out_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    return ["study", name, *TINY, f"data.cache_dir={cache_dir}", f"out_dir={out_dir}", *extra]


def numbers(out_dir: Path, name: str = "study.csv") -> pd.DataFrame:
    table = pd.read_csv(out_dir / name)
    return table.drop(columns=[column for column in table.columns if "seconds" in column])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def studies(tmp_path_factory, cache_dir) -> dict[str, Path]:
    """Every study, run once on its tiny grid."""
    folders = {}
    for name, grid in GRIDS.items():
        out_dir = tmp_path_factory.mktemp(name)
        assert main(study_args(name, out_dir, cache_dir, *grid)) == 0
        folders[name] = out_dir
    return folders


@pytest.mark.parametrize("name", list(GRIDS))
def test_each_study_writes_its_table_comparisons_and_figures(studies, name):
    out_dir = studies[name]
    table = pd.read_csv(out_dir / "study.csv")
    arms = ABLATION_ARMS if name == "ablation" else 2
    levels = 1 if name == "ablation" else 2
    assert len(table) == arms * levels
    assert (table.status == "complete").all() and (table.seeds == 2).all()
    assert table.groupby("level").arm.nunique().eq(arms).all()
    for cell in table.cell:  # each cell is a `pifexp train` run folder
        assert (out_dir / "cells" / cell / "seed-1" / "metrics.json").is_file()
    comparisons = pd.read_csv(out_dir / "comparisons.csv")
    # within a level both arms trained on the same cohort and, seed by seed, the same split
    assert (comparisons.pairing == "paired").all()
    references = 2 if name == "ablation" else 1
    per_metric = (arms - 1) * levels if references == 1 else (arms - 1) + (arms - 2)
    assert len(comparisons) == per_metric * 2  # balanced accuracy, early-stopping epoch
    markdown = (out_dir / "study.md").read_text()
    assert "**Synthetic data: not the paper's result.**" in markdown
    assert "MDD (pp)" in markdown and "What these numbers support" in markdown
    assert (out_dir / "study.tex").read_text().startswith("% pifexp study")
    for metric in ("balanced-accuracy", "early-stopping-epoch"):
        assert (out_dir / "figures" / f"{name}-{metric}.png").stat().st_size > 10_000
    trends = pd.read_csv(out_dir / "trends.csv")
    assert len(trends) == (2 if name in ("registration", "samples") else 0)


def test_a_levels_cohort_is_shared_by_its_arms_and_levels_differ(studies):
    out_dir = studies["registration"]
    inputs = {cell.name: json.loads((cell / "input.json").read_text())["data_source"]["manifest"]
              for cell in (out_dir / "cells").iterdir()}  # fmt: skip
    assert inputs["sd0mm-baseline"] == inputs["sd0mm-pif"]
    assert inputs["sd6mm-baseline"] == inputs["sd6mm-pif"] != inputs["sd0mm-pif"]
    seeds = pd.read_csv(out_dir / "seeds.csv")
    # seed k draws the same split at every level (the same subjects, another displacement)
    assert seeds.groupby("seed").split_sha256.nunique().eq(1).all()


def test_the_sample_size_levels_keep_nested_training_sets(studies):
    out_dir = studies["samples"]
    for seed in (0, 1):
        small = json.loads((out_dir / "cells" / "n4-pif" / f"seed-{seed}" / "split.json")
                           .read_text())  # fmt: skip
        full = json.loads((out_dir / "cells" / "nall-pif" / f"seed-{seed}" / "split.json")
                          .read_text())  # fmt: skip
        assert len(small["train"]) == 4 and set(small["train"]) < set(full["train"])
        assert small["val"] == full["val"] and small["test"] == full["test"]
    table = pd.read_csv(out_dir / "study.csv").set_index("cell")
    assert table.loc["n4-baseline", "x"] == 4  # plotted at the training subjects it had
    assert table.loc["nall-baseline", "x"] == table.loc["nall-baseline", "train_subjects_max"]


def test_the_ablation_table_counts_every_arms_parameters(studies):
    table = pd.read_csv(studies["ablation"] / "study.csv").set_index("arm")
    assert list(table.index[:3]) == ["baseline", "pif", "pif-one-patch"]
    assert table.loc["baseline", "parameters_pif"] == 0
    assert table.loc["pif", "parameters_pif"] > table.loc["pif-one-patch", "parameters_pif"]
    assert table.loc["pif-patch3", "parameters_pif"] > table.loc["pif", "parameters_pif"]
    assert table.loc["pif-depth2", "parameters"] < table.loc["pif", "parameters"]


def test_rerunning_a_finished_study_gives_the_same_table(studies, cache_dir):
    out_dir = studies["samples"]
    before = numbers(out_dir)
    assert main(study_args("samples", out_dir, cache_dir, *GRIDS["samples"])) == 0
    pd.testing.assert_frame_equal(numbers(out_dir), before)


def test_a_killed_study_resumes_to_the_uninterrupted_table(studies, cache_dir, tmp_path):
    out_dir = tmp_path / "killed"
    args = study_args("registration", out_dir, cache_dir, *GRIDS["registration"])
    process = subprocess.Popen([sys.executable, "-m", "pifexp.cli", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    first_seed = out_dir / "cells" / "sd0mm-baseline" / "seed-0" / "metrics.json"
    deadline = time.monotonic() + KILL_TIMEOUT_S
    try:
        while not first_seed.exists() and process.poll() is None:
            assert time.monotonic() < deadline, "the study did not finish a seed in time"
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the study ended before it could be killed"
    assert not (out_dir / "study.csv").exists()
    assert main(args) == 0
    for name in ("study.csv", "comparisons.csv", "trends.csv"):
        pd.testing.assert_frame_equal(numbers(out_dir, name),
                                      numbers(studies["registration"], name))  # fmt: skip


def test_synthetic_only_studies_refuse_a_cohort_of_ones_own(tmp_path, capsys):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("subject_id,path,label\n")
    args = ["study", "registration", "data=manifest", f"data.manifest={manifest}",
            f"out_dir={tmp_path / 'out'}"]  # fmt: skip
    assert main(args) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert "cannot run on a cohort of one's own" in error[0] and "samples" in error[0]
    assert not (tmp_path / "out" / "cells").exists()


def test_the_sample_size_study_runs_on_a_cohort_of_ones_own(tmp_path, cache_dir):
    cohort = tmp_path / "cohort"
    assert main(["data", "synth", "task=adni", "profile=quick", "data.synthetic.n_subjects=20",
                 f"data.synthetic.out_dir={cohort}", "data.progress=false"]) == 0  # fmt: skip
    out_dir = tmp_path / "own"
    synthetic_only = [arg for arg in TINY if arg.startswith("data.synthetic.")]
    args = [arg for arg in study_args("samples", out_dir, cache_dir) if arg not in synthetic_only]
    args += ["data=manifest", f"data.manifest={cohort / 'manifest.csv'}",
             "data.train_subjects=4,all", "arm=pif"]  # fmt: skip
    assert main(args) == 0
    table = pd.read_csv(out_dir / "study.csv")
    assert list(table.cell) == ["n4-pif", "nall-pif"]
    assert table.data_source.str.startswith("manifest ").all()
    assert "Synthetic data" not in (out_dir / "study.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["study"], "name the study: pifexp study <ablation|registration|samples|signal>"),
        (["study", "nonsense"], "nonsense"),
        (["study", "registration", "signal"], "takes one study name"),
        (["study", "samples", "study.level=3"], "study.level is chosen per cell"),
        (["study", "samples"], "out_dir is required"),
    ],
)
def test_a_wrong_study_command_is_one_line(args, message, capsys, tmp_path):
    extra = [] if "out_dir" in message else [f"out_dir={tmp_path}"]
    assert main([*args, *extra]) != 0
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0], error


# ----------------------------------------------------------------------------- known numbers


def write_study_cell(out_dir: Path, overrides: list[str], values: dict[int, float]) -> None:
    """A finished cell of the registration study with chosen balanced accuracies per seed; every
    cell's seed k has the same split (they pair up). The study's study.json beside its cells."""
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("study", overrides=["study=registration", "profile=quick", "out_dir=x",
                                          f"trainer.seeds={len(values)}", *overrides])  # fmt: skip
    (out_dir / STUDY_FILE).write_text(json.dumps(study_settings(cfg)))
    config = OmegaConf.to_container(training_config(cell_config(cfg)), resolve=True)
    folder = out_dir / "cells" / config["study"]["cell"]
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
    for seed, balanced_accuracy in values.items():
        seed_dir = folder / f"seed-{seed}"
        seed_dir.mkdir()
        metrics = {"seed": seed, "balanced_accuracy": balanced_accuracy,
                   "early_stopping_epoch": 12, "roc_auc": balanced_accuracy,
                   "sensitivity": 0.5, "specificity": 0.5, "best_epoch": 7,
                   "epochs_trained": 13, "stopped_early": True, "train_images": 100,
                   "val_images": 20, "test_images": 25, "seconds": 1.0, "train_subjects": 100,
                   "val_subjects": 20, "test_subjects": 25}  # fmt: skip
        (seed_dir / "metrics.json").write_text(json.dumps(metrics))
        split = {"train": [f"t{seed}-{i}" for i in range(3)], "val": [f"v{seed}"],
                 "test": [f"s{seed}"]}  # fmt: skip
        (seed_dir / "split.json").write_text(json.dumps(split))


def test_the_study_statistics_find_a_shrinking_advantage(tmp_path, capsys):
    # PIF is 10 pp better without misregistration and 1 pp less per mm, with seed noise
    rng = np.random.default_rng(0)
    seeds = range(10)
    for level in (0, 2, 4, 8):
        base = {s: 0.75 + 0.02 * rng.standard_normal() for s in seeds}
        noise = {s: 0.005 * rng.standard_normal() for s in seeds}
        sd = f"data.synthetic.misregistration.sd_mm={level}"
        write_study_cell(tmp_path, ["arm=baseline", sd], base)
        write_study_cell(tmp_path, ["arm=pif", sd],
                         {s: base[s] + 0.10 - 0.01 * level + noise[s] for s in seeds})  # fmt: skip
    assert main(["report", str(tmp_path)]) == 0  # the tables from the study's folder alone
    comparisons = pd.read_csv(tmp_path / "comparisons.csv")
    ba = comparisons[comparisons.metric == "balanced_accuracy"].set_index("level")
    assert list(ba.index) == [0, 2, 4, 8]
    assert ba.loc[0, "difference"] == pytest.approx(0.10, abs=0.005)
    assert ba.loc[8, "difference"] == pytest.approx(0.02, abs=0.005)
    assert ba.loc[0, "ci_low"] > 0 and ba.loc[0, "p_value_adjusted"] < 0.05
    assert (ba.p_value_adjusted >= ba.p_value).all()
    trend = pd.read_csv(tmp_path / "trends.csv").set_index("metric").loc["balanced_accuracy"]
    assert trend.slope == pytest.approx(-0.01, abs=0.001)
    assert trend.ci_high < 0 and trend.p_value < 0.05 and trend.levels == 4
    assert trend.seeds == 10
    assert "- PIF − Baseline over the factor: a trend" in (tmp_path / "study.md").read_text()

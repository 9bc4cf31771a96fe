"""pifexp table1 on a tiny synthetic cohort: every cell trained through a Hydra multirun, the
tables written, resumed after a kill, run by other Hydra launchers, failures reported."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pifexp.cli import main

# small enough for seconds per cell on a CPU: 8 subjects (ADNI: about 20 images), 3 epochs
TINY = [
    "profile=quick", "task.input_shape=[32,38,32]", "data.synthetic.n_subjects=8",
    "trainer.seeds=2", "trainer.max_epochs=3", "trainer.ignore_before=0", "trainer.patience=1",
    "trainer.batch_size=4", "trainer.num_threads=1", "trainer.progress=false",
    "data.progress=false",
]  # fmt: skip
PAIR = "experiment=adni-baseline-full,adni-pif-full"
KILL_TIMEOUT_S = 300


def table1_args(out_dir: Path, cache_dir: Path, *extra: str) -> list[str]:
    return ["table1", *TINY, f"data.cache_dir={cache_dir}", f"out_dir={out_dir}", *extra]


def numbers(out_dir: Path) -> pd.DataFrame:
    """table1.csv without the columns that time the run."""
    table = pd.read_csv(out_dir / "table1.csv")
    return table.drop(columns=[column for column in table.columns if "seconds" in column])


def cell_numbers(out_dir: Path) -> pd.DataFrame:
    """Each cell's own numbers (not its pair's tests), by cell."""
    table = numbers(out_dir).set_index("cell")
    return table.drop(columns=[c for c in table.columns if "p_value" in c or "pair" in c])


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def batch(tmp_path_factory, cache_dir) -> Path:
    """An uninterrupted run of two cells (baseline and PIF, ADNI, full data)."""
    out_dir = tmp_path_factory.mktemp("batch")
    assert main(table1_args(out_dir, cache_dir, PAIR)) == 0
    return out_dir


def test_every_cell_is_trained_and_tabled(batch):
    table = pd.read_csv(batch / "table1.csv")
    assert list(table.cell) == ["adni-baseline-full", "adni-pif-full"]
    assert (table.status == "complete").all() and (table.seeds == 2).all()
    for row in table.itertuples():
        # each cell is a `pifexp train` run folder; the table repeats its summary
        summary = pd.read_csv(batch / "cells" / row.cell / "summary.csv")
        assert row.balanced_accuracy_mean == pytest.approx(summary.balanced_accuracy_mean[0])
        assert row.early_stopping_epoch_mean == pytest.approx(summary.early_stopping_epoch_mean[0])
        assert (batch / "cells" / row.cell / "seed-1" / "metrics.json").is_file()
    assert table.paired_seeds.tolist() == [2, 2]
    markdown = (batch / "table1.md").read_text()
    assert "synthetic cohort" in markdown and "Eitel et al. 2019" in markdown
    assert (batch / "table1.tex").is_file()
    assert (batch / "figures" / "pif-patch-grid-adni.png").is_file()


def test_the_batch_report_has_intervals_tests_censoring_and_power(batch, tmp_path):
    table = pd.read_csv(batch / "table1.csv").set_index("cell")
    for cell in table.index:
        row = table.loc[cell]
        assert row.balanced_accuracy_ci_low <= row.balanced_accuracy_mean
        assert row.balanced_accuracy_mean <= row.balanced_accuracy_ci_high
        assert row.pairing == "paired" and row.seed_intervals_by_subject
        assert 0 <= row.stopped_by_cap <= 2 and row.steps_to_best_mean > 0
    comparisons = pd.read_csv(batch / "comparisons.csv").set_index("metric")
    primary = comparisons.loc["balanced_accuracy"]
    assert primary.primary_test == "corrected resampled t-test" and primary.adjustment == "holm"
    assert primary.seeds == 2 and primary.test_train_ratio > 0
    stopping = comparisons.loc["early_stopping_epoch"]
    assert {"logrank_p_value", "baseline_stopped_by_cap", "pif_stopped_by_cap"} <= set(
        stopping.index
    )
    seeds = pd.read_csv(batch / "seeds.csv")
    assert len(seeds) == 4 and seeds.by_subject.all() and seeds.split_sha256.notna().all()
    # both arms' seed k share one split
    assert seeds.groupby("seed").split_sha256.nunique().eq(1).all()
    markdown = (batch / "table1.md").read_text()
    for text in ("Primary endpoint: balanced accuracy", "Holm-adjusted", "MDD:",
                 "Seeds for 5 pp", "log-rank", "Stopped by the cap", "BA 95% CI"):  # fmt: skip
        assert text in markdown
    assert (batch / "figures" / "early-stopping-km-adni-full.png").is_file()
    # the same folders give the same bytes
    for name in ("first", "second"):
        assert main(["report", str(batch), f"out_dir={tmp_path / name}"]) == 0
    for name in ("table1.md", "table1.csv", "table1.tex", "comparisons.csv", "seeds.csv"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()


def test_rerun_reuses_finished_cells(batch, cache_dir):
    done = sorted(batch.glob("cells/*/seed-*/best.pt"))
    stamps = [path.stat().st_mtime_ns for path in done]
    tables = {name: (batch / name).read_bytes() for name in ("table1.csv", "table1.md")}
    assert main(table1_args(batch, cache_dir, PAIR)) == 0
    assert [path.stat().st_mtime_ns for path in done] == stamps  # nothing trained again
    assert {name: (batch / name).read_bytes() for name in tables} == tables


def test_a_failed_cell_is_reported_and_the_batch_goes_on(batch, cache_dir, tmp_path, capsys):
    out_dir = tmp_path / "batch"
    # a finished cell moved to another batch folder is reused there
    shutil.copytree(
        batch / "cells" / "adni-baseline-full", out_dir / "cells" / "adni-baseline-full"
    )
    # a folder holding another run: the cell must fail rather than overwrite it
    foreign = out_dir / "cells" / "adni-pif-small" / "config.yaml"
    foreign.parent.mkdir(parents=True)
    shutil.copy(batch / "cells" / "adni-pif-full" / "config.yaml", foreign)
    foreign_text = foreign.read_text()

    code = main(table1_args(out_dir, cache_dir, "experiment=adni-baseline-full,adni-pif-small"))
    assert code == 1
    err = capsys.readouterr().err
    assert "pifexp: error: 1 of 2 cells did not finish (adni-pif-small: failed: " in err
    table = pd.read_csv(out_dir / "table1.csv").set_index("cell")
    assert table.loc["adni-pif-small"].status.startswith("failed: ")
    assert "other settings" in table.loc["adni-pif-small"].status
    assert table.loc["adni-baseline-full"].status == "complete"
    assert "adni-pif-small: failed:" in (out_dir / "table1.md").read_text()
    assert foreign.read_text() == foreign_text
    reused = numbers(batch).set_index("cell").loc["adni-baseline-full", "balanced_accuracy_mean"]
    assert table.loc["adni-baseline-full"].balanced_accuracy_mean == pytest.approx(reused)


@pytest.mark.parametrize(
    ("override", "named"),
    [("data.subset=0.5", "data.subset"), ("task=ms", "task"), ("model=baseline", "model")],
)
def test_settings_chosen_per_cell_cannot_be_overridden(tmp_path, capsys, override, named):
    out_dir = tmp_path / "batch"
    assert main(["table1", f"out_dir={out_dir}", override]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"pifexp: error: {named} is chosen per cell")
    assert not out_dir.exists()


def test_out_dir_is_required(capsys):
    assert main(["table1"]) == 1
    assert "out_dir is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("launcher", "plugin", "cells", "settings"),
    [
        # two cells in two local processes at once
        ("joblib", "hydra_plugins.hydra_joblib_launcher", PAIR, ["hydra.launcher.n_jobs=2"]),
        # one cell as a job of submitit's local executor (as SLURM would run it)
        ("submitit_local", "hydra_plugins.hydra_submitit_launcher", "experiment=adni-pif-full", []),
    ],
)
def test_other_hydra_launchers_give_the_same_cells(
    batch, cache_dir, tmp_path, launcher, plugin, cells, settings
):
    pytest.importorskip(plugin)
    out_dir = tmp_path / launcher
    args = table1_args(out_dir, cache_dir, cells, f"hydra/launcher={launcher}", *settings)
    assert main(args) == 0
    ours = cell_numbers(out_dir)
    # a column read from one cell's table may come back as int where the batch's holds floats
    pd.testing.assert_frame_equal(ours, cell_numbers(batch).loc[ours.index], check_dtype=False)


def test_a_killed_batch_resumes_to_the_uninterrupted_table(batch, cache_dir, tmp_path):
    out_dir = tmp_path / "killed"
    command = [sys.executable, "-m", "pifexp.cli", *table1_args(out_dir, cache_dir, PAIR)]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    first_seed = out_dir / "cells" / "adni-baseline-full" / "seed-0" / "metrics.json"
    deadline = time.monotonic() + KILL_TIMEOUT_S
    try:
        while not first_seed.exists() and process.poll() is None:
            assert time.monotonic() < deadline, "the batch did not finish a seed in time"
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the batch ended before it could be killed"
    assert not (out_dir / "table1.csv").exists()
    assert not (out_dir / "cells" / "adni-pif-full" / "seed-1" / "metrics.json").exists()

    assert main(table1_args(out_dir, cache_dir, PAIR)) == 0
    pd.testing.assert_frame_equal(numbers(out_dir), numbers(batch))

"""pifexp report: Table 1 and figures from run folders, without training."""

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from table1_folders import ALL_CELLS, write_batch, write_cell
from torch import nn

from pifexp.cli import main
from pifexp.experiments.report import load_runs, paired_tests
from pifexp.experiments.report.patch_grid import pif_patch_labels
from pifexp.experiments.specs import network_spec_of
from pifexp.layers import PatchIndividualFilters3d
from pifexp.models import build_model

TABLES = ("table1.md", "table1.csv", "table1.tex", "comparisons.csv", "seeds.csv")
NO_FIGURES = "reporting.figures.enabled=false"


def report(*args):
    return main(["report", *args])


@pytest.fixture(scope="module")
def ten_cells(tmp_path_factory):
    """A table1 folder with all ten cells, three seeds each (read, never changed, by the tests)."""
    return write_batch(tmp_path_factory.mktemp("ten_cells"))


def test_table_follows_the_paper_layout_with_the_published_numbers_beside_ours(ten_cells, tmp_path):
    batch = tmp_path
    assert report(f"dirs={ten_cells}", f"out_dir={batch}", NO_FIGURES) == 0

    table = pd.read_csv(batch / "table1.csv")
    assert list(table.cell) == ALL_CELLS  # the paper's order: task, then setting, then model
    for column in ("task", "model", "setting", "balanced_accuracy_mean", "balanced_accuracy_std",
                   "early_stopping_epoch_mean", "early_stopping_epoch_std"):  # fmt: skip
        assert column in table.columns
    assert sum("p_value" in column for column in table.columns) == 4
    # cell index 4 (adni-baseline-full): BA 0.64 + seed/1000, ES 14 + seed
    adni = table.set_index("cell").loc["adni-baseline-full"]
    assert adni.balanced_accuracy_mean == pytest.approx(0.641)
    assert adni.balanced_accuracy_std == pytest.approx(0.001)
    assert adni.early_stopping_epoch_mean == pytest.approx(15.0)
    assert adni.paper_balanced_accuracy == pytest.approx(0.8462)
    assert adni.paper_early_stopping_epoch == pytest.approx(31.8)
    assert (table.status == "complete").all()
    assert table.data_source.str.contains("not the paper's data").all()

    markdown = (batch / "table1.md").read_text()
    rows = [line for line in markdown.splitlines() if line.startswith("| UKB") or
            line.startswith("| ADNI") or line.startswith("| MS")][:6]  # fmt: skip
    assert [row.split(" | ")[:2] for row in rows] == [
        ["| UKB", "Baseline"], ["| UKB", "PIF"], ["| ADNI", "Baseline"], ["| ADNI", "PIF"],
        ["| MS", "Baseline"], ["| MS", "PIF"],
    ]  # fmt: skip
    # ours, its interval, then the paper's, for full then small: UKB baseline full is
    # 60.10 ± 0.10 (seeds 60.0, 60.1, 60.2) vs 89.52. Interval: t(0.975, 2) * 0.10 *
    # sqrt(1/3 + 4/8) = 0.39 (test / train subjects 4 / 8)
    assert rows[0].startswith(
        "| UKB | Baseline | 60.10 ± 0.10 | [59.7, 60.5] | 89.52 | 11.0 ± 1.0 | 59.2 |"
    )
    assert "| MS | PIF | 69.10 ± 0.10 | [68.7, 69.5] | 80.92 |" in rows[5]
    assert "Eitel et al. 2019" in markdown and "synthetic" in markdown
    assert "not the paper's result" in markdown
    latex = (batch / "table1.tex").read_text()
    assert "89.52" in latex and "$\\pm$" in latex and "synthetic" in latex


def test_paired_tests_pair_the_seeds_that_share_a_split(tmp_path):
    batch = tmp_path / "batch"
    baseline = {0: (0.60, 20), 1: (0.61, 22), 2: (0.70, 40), 3: (0.63, 25), 4: (0.64, 30)}
    # PIF lacks seed 2; the others are baseline + 0.01 .. 0.05 (ES: -5, -8, -5, -2)
    pif = {0: (0.61, 15), 1: (0.63, 14), 3: (0.67, 20), 4: (0.69, 28)}
    write_cell(batch, "adni-baseline-full", baseline)
    write_cell(batch, "adni-pif-full", pif, planned=5)
    assert report(f"dirs={batch}", NO_FIGURES) == 0

    table = pd.read_csv(batch / "table1.csv").set_index("cell")
    pif_row = table.loc["adni-pif-full"]
    assert pif_row.paired_seeds == 4
    assert pif_row.status == "incomplete: 4 of 5 seeds"
    # all four differences positive: exact two-sided signed-rank p = 2 / 2^4
    assert pif_row.balanced_accuracy_wilcoxon_p_value == pytest.approx(0.125)
    assert pif_row.balanced_accuracy_ttest_rel_p_value == pytest.approx(0.046205, abs=1e-5)
    assert pif_row.early_stopping_epoch_ttest_rel_p_value == pytest.approx(0.026548, abs=1e-5)
    assert pif_row.balanced_accuracy_paired_difference == pytest.approx(0.03)
    # both arms of the pair carry the pair's p-values
    assert table.loc["adni-baseline-full"].balanced_accuracy_wilcoxon_p_value == pytest.approx(
        0.125
    )
    markdown = (batch / "table1.md").read_text()
    assert "incomplete: 4 of 5 seeds" in markdown
    # the primary test: corrected resampled t over the 4 pairs, n_test / n_train = 4 / 8
    differences = np.array([0.01, 0.02, 0.04, 0.05])
    se = np.sqrt((1 / 4 + 4 / 8) * differences.var(ddof=1))
    p = 2 * stats.t.sf(differences.mean() / se, 3)
    assert p == pytest.approx(0.15403, abs=1e-5)
    low, high = stats.t.interval(0.95, 3, loc=0.03, scale=se)
    comparisons = pd.read_csv(batch / "comparisons.csv").set_index("metric")
    primary = comparisons.loc["balanced_accuracy"]
    assert primary.pairing == "paired" and primary.seeds == 4
    assert primary.p_value == pytest.approx(p) and primary.p_value_adjusted == pytest.approx(p)
    assert (primary.ci_low, primary.ci_high) == pytest.approx((low, high))
    assert primary.effect_size == pytest.approx(0.03 / differences.std(ddof=1))  # d_z
    assert primary.secondary_p_value == pytest.approx(0.125)  # Wilcoxon, 2 / 2^4
    row = f"| ADNI | Full | 4 | paired | +3.00 | [{100 * low:.2f}, {100 * high:.2f}] | 1.64 | "
    assert row + "+3.00 | 0.1540 | 0.1540 | 0.1250 |" in markdown


def test_paired_tests_are_undefined_without_a_difference():
    same = pd.DataFrame({"seed": [0, 1, 2], "balanced_accuracy": [0.5, 0.6, 0.7]})
    result = paired_tests(same, same, ["balanced_accuracy"])
    assert result["paired_seeds"] == 3
    assert math.isnan(result["balanced_accuracy_wilcoxon_p_value"])
    assert math.isnan(result["balanced_accuracy_ttest_rel_p_value"])


def test_same_run_folders_give_byte_identical_tables(ten_cells, tmp_path):
    for name in ("a", "b"):
        assert report(f"dirs={ten_cells}", f"out_dir={tmp_path / name}", NO_FIGURES) == 0
    for name in TABLES:
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name
        assert b"\r" not in first


def test_failed_cell_is_listed_not_dropped(tmp_path):
    batch = tmp_path / "batch"
    write_cell(batch, "ms-baseline-full", {0: (0.7, 12), 1: (0.72, 14)})
    write_cell(batch, "ms-pif-full", {}, planned=2, failure="NaN loss at epoch 3")
    assert report(f"dirs={batch}", NO_FIGURES) == 0

    table = pd.read_csv(batch / "table1.csv").set_index("cell")
    assert table.loc["ms-pif-full"].status == "failed: NaN loss at epoch 3"
    assert table.loc["ms-pif-full"].seeds == 0
    markdown = (batch / "table1.md").read_text()
    assert "ms-pif-full: failed: NaN loss at epoch 3" in markdown
    assert "| MS | PIF | —[1] | — | 80.92 |" in markdown  # the row stays, marked
    assert "failed: NaN loss at epoch 3" in (batch / "table1.tex").read_text()


def test_figures_for_each_cell_pair_and_pif_task(tmp_path):
    batch = tmp_path / "batch"
    write_batch(batch, ["adni-baseline-full", "adni-pif-full"], n_seeds=2)
    assert report(f"dirs={batch}") == 0
    figures = sorted(path.name for path in (batch / "figures").iterdir())
    assert figures == [
        "balanced-accuracy-adni-full.png", "early-stopping-km-adni-full.png",
        "epochs-adni-full.png",
        "learning-curves-adni-baseline-full.png", "learning-curves-adni-pif-full.png",
        "mean-curves-adni-full.png", "pif-patch-grid-adni.png",
        "roc-adni-baseline-full.png", "roc-adni-pif-full.png",
    ]  # fmt: skip
    for name in figures:
        assert (batch / "figures" / name).read_bytes()[:4] == b"\x89PNG"


def test_plain_train_runs_are_reported_by_their_subset(tmp_path):
    batch = tmp_path / "batch"
    write_cell(batch, "ukb-pif-small", {0: (0.7, 12)})
    run_dir = batch / "cells" / "ukb-pif-small"
    # a run folder of an earlier version's `pifexp train` names no setting (neither a cell block
    # nor a setting group): data.subset names the setting
    config = (run_dir / "config.yaml").read_text()
    config = config.replace("cell:\n  name: ukb-pif-small\n", "")
    (run_dir / "config.yaml").write_text(config.replace("setting:\n  name: small\n", ""))
    assert "cell:" not in (run_dir / "config.yaml").read_text()
    assert "setting:" not in (run_dir / "config.yaml").read_text()
    [run] = load_runs([run_dir])
    assert (run.task, run.model, run.setting) == ("ukb", "pif", "small")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda root: root / "missing", "is not a folder"),
        (lambda root: root, "holds no run folders"),
    ],
)
def test_bad_dirs_are_one_line_errors(tmp_path, capsys, make, message):
    assert report(f"dirs={make(tmp_path)}", NO_FIGURES) == 1
    err = capsys.readouterr().err
    assert err.startswith("pifexp: error: dirs: ") and message in err
    assert "Traceback" not in err


def test_dirs_is_required(capsys):
    assert report() == 1
    assert "dirs is required" in capsys.readouterr().err


def test_two_folders_of_one_cell_are_an_error(tmp_path, capsys):
    for name in ("a", "b"):
        write_cell(tmp_path / name, "ms-pif-full", {0: (0.7, 12)})
    assert report(f"dirs=[{tmp_path / 'a'},{tmp_path / 'b'}]", f"out_dir={tmp_path}") == 1
    assert "hold the same cell (ms-pif-full)" in capsys.readouterr().err
    assert not (tmp_path / "table1.csv").exists()


# ----------------------------------------------------------------------------- the patch grid


def test_patch_labels_follow_a_convolution_without_padding():
    # conv 3^3 (no padding) maps input voxel v to feature v - 1: features 0..9 of 12 voxels, two
    # patches of 5 per axis
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv3d(1, 2, 3))
    model.add_module("pif", PatchIndividualFilters3d(2, 1, input_shape=(10, 10, 10), patch_size=5,
                                                     kernel_size=3))  # fmt: skip
    labels = pif_patch_labels(model, (12, 12, 12))
    line = labels[:, 3, 3]  # along D at H = W = 3 (patch 0 of H and W)
    assert list(line) == [0] + [1] * 5 + [5] * 5 + [0]  # patch 1 along D is patch 4 (2x2x2 grid)
    assert set(np.unique(labels)) == set(range(9))


def test_patch_labels_follow_pooling_steps():
    # conv 3 then max pool 2 / 2: feature f sits at input voxels 2f + 1 and 2f + 2
    model = nn.Sequential()
    model.add_module("conv1", nn.Conv3d(1, 2, 3))
    model.add_module("pool1", nn.MaxPool3d(2, 2))
    model.add_module("pif", PatchIndividualFilters3d(2, 1, input_shape=(6, 6, 6), patch_size=5,
                                                     kernel_size=3))  # fmt: skip
    labels = pif_patch_labels(model, (14, 14, 14))
    assert list(labels[:, 1, 1]) == [0] + [1] * 10 + [5] * 2 + [0]


def test_patch_labels_cover_every_patch_of_a_configured_network(compose_config):
    cfg = compose_config("train", ["task=adni", "model=pif", "profile=quick"])
    shape = list(cfg.task.input_shape)
    model = build_model(network_spec_of(cfg))
    labels = pif_patch_labels(model, shape)
    layer = model.pif
    assert labels.shape == tuple(shape)
    assert set(np.unique(labels)) == set(range(1, layer.num_patches + 1))
    # padded convolutions and poolings that halve the grid exactly: every input voxel feeds a patch
    assert (labels > 0).all()
    # patches are numbered row-major, as the layer numbers them: the first one is at the origin
    first = np.argwhere(labels == 1)
    assert first.min(axis=0).tolist() == np.argwhere(labels > 0).min(axis=0).tolist()
    with torch.no_grad():  # the labels come from the same network that trains
        assert model(torch.zeros(1, 1, *shape)).shape == (1, 1)


def test_runs_with_other_splits_are_compared_unpaired_and_say_so(tmp_path):
    batch = tmp_path / "batch"
    write_cell(batch, "adni-baseline-full", {0: (0.60, 20), 1: (0.62, 22), 2: (0.64, 18)})
    # the same seeds, but another cohort's splits (as from `pifexp report DIR1 DIR2`)
    write_cell(batch, "adni-pif-full", {0: (0.66, 15), 1: (0.70, 14), 2: (0.68, 16)},
               split_of="other-")  # fmt: skip
    assert report(f"dirs={batch}", NO_FIGURES) == 0
    comparisons = pd.read_csv(batch / "comparisons.csv").set_index("metric")
    primary = comparisons.loc["balanced_accuracy"]
    assert primary.pairing == "unpaired" and primary.primary_test == "Welch t-test"
    assert "splits differ" in primary.unpaired_because
    welch = stats.ttest_ind([0.66, 0.70, 0.68], [0.60, 0.62, 0.64], equal_var=False)
    assert primary.p_value == pytest.approx(welch.pvalue)
    table = pd.read_csv(batch / "table1.csv").set_index("cell")
    assert (table.pairing == "unpaired").all()
    assert math.isnan(table.loc["adni-pif-full"].balanced_accuracy_wilcoxon_p_value)
    markdown = (batch / "table1.md").read_text()
    assert "| ADNI | Full | 3 | unpaired: the arms' splits differ (seeds 0, 1, 2) |" in markdown

"""pifexp interpret: attribution maps of finished runs, scored against the cohort's effect map and
checked against re-initialised weights."""

import json
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from apply_fixtures import SHAPE, cube_runs, one_line_error
from torch import nn

from pifexp.cli import main
from pifexp.errors import PifexpError
from pifexp.experiments import rundir
from pifexp.experiments.apply.attribution import (
    METHODS,
    AttributionSpec,
    attribute,
    check_lrp,
    feature_geometry,
    gradcam_layer,
    on_input_grid,
    patch_maps_to_volume,
    random_network,
)
from pifexp.layers import PatchIndividualFilters3d
from pifexp.models import BlockSpec, NetworkSpec, PifSpec

FAST = ["ig.steps=4", "occlusion.window=16", "occlusion.stride=16", "data.progress=false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return cube_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def every_method(runs):
    """Every method on both arms of the table1 folder: one seed, one subject of each class."""
    args = ["interpret", str(runs.table1), "seeds=1", "subjects_per_class=1", *FAST]
    assert main(args) == 0
    return runs.table1 / rundir.INTERPRETATION_DIR


@pytest.fixture(scope="module")
def ig_scores(runs, tmp_path_factory):
    """Integrated Gradients of both arms, every seed and test image, scored against the cube."""
    out = tmp_path_factory.mktemp("ig")
    args = ["interpret", str(runs.baseline), str(runs.pif), "method=ig", "ig.steps=8",
            f"out_dir={out}", "figures.enabled=false", "data.progress=false"]  # fmt: skip
    assert main(args) == 0
    return out


def test_every_method_maps_both_arms_on_the_input_grid(runs, every_method):
    grid = rundir.read_input_grid(runs.pif)
    table = pd.read_csv(every_method / "interpretation.csv")
    assert set(table.method) == set(METHODS) and set(table.model) == {"baseline", "pif"}
    assert set(table.weights) == {"trained", "random"} and set(table.seed) == {0}
    assert {"cell", "model", "seed", "method", "weights", "auc", "mass_inside"} <= set(table)
    assert table.auc.notna().all() and table.images.eq(2).all()
    for cell in ("adni-baseline-full", "adni-pif-full"):
        for method in METHODS:
            for weights in ("trained", "random"):
                folder = every_method / "maps" / cell / method / "seed-0" / weights
                subjects = sorted(folder.glob("sub-*.nii.gz"))
                assert len(subjects) == 2
                for path in [*subjects, folder / "mean_abs_AD.nii.gz", folder / "mean_CN.nii.gz"]:
                    image = nib.load(path)
                    assert image.shape == SHAPE
                    np.testing.assert_allclose(image.affine, grid.affine, atol=1e-6)
                    assert np.isfinite(image.get_fdata()).all()
            arm = every_method / "maps" / cell / method / "trained" / "mean_abs_all.nii.gz"
            assert nib.load(arm).shape == SHAPE
            assert np.abs(nib.load(arm).get_fdata()).max() > 0
    for method in METHODS:
        assert (every_method / "figures" / f"{method}.png").stat().st_size > 10_000
    assert "# Attribution maps" in (every_method / "interpretation.md").read_text()


def test_trained_baseline_finds_the_cube_better_than_random_weights(ig_scores):
    table = pd.read_csv(ig_scores / "interpretation.csv")
    baseline = table[table.model == "baseline"].groupby("weights")[["auc", "mass_inside"]].mean()
    # the random network's maps follow the bright cube too (gradient times input), so the margin
    # is modest with the quick networks; both scores must show it
    assert baseline.loc["trained", "auc"] > baseline.loc["random", "auc"] + 0.02
    assert baseline.loc["trained", "mass_inside"] > 1.25 * baseline.loc["random", "mass_inside"]
    assert set(table.seed) == {0, 1} and table.images.eq(8).all()  # every test subject
    summary = (ig_scores / "interpretation.md").read_text()
    assert "PIF vs baseline" in summary and "| yes |" in summary  # paired: the same splits
    # AUC and mass of one method: two comparisons, adjusted together
    assert "Holm-adjusted across the 2 comparisons" in summary
    images = pd.read_csv(ig_scores / "images.csv")
    assert len(images) == 2 * 2 * 2 * 8  # arms x seeds x weights x images


def test_a_rerun_changes_nothing(runs, ig_scores):
    before = {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in ig_scores.rglob("*") if p.is_file()
    }
    args = ["interpret", str(runs.baseline), str(runs.pif), "method=ig", "ig.steps=8",
            f"out_dir={ig_scores}", "figures.enabled=false", "data.progress=false"]  # fmt: skip
    assert main(args) == 0
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in ig_scores.rglob("*") if p.is_file()}
    assert after.keys() == before.keys()
    maps = [p for p in before if p.suffix == ".gz" and "seed-" in str(p)]
    assert maps and all(after[p][0] == before[p][0] for p in maps)  # not made again
    assert all(after[p][1] == before[p][1] for p in before)  # and every table is the same


def test_other_settings_in_the_same_folder_are_refused(runs, ig_scores, capsys):
    args = ["interpret", str(runs.baseline), "method=ig", "ig.steps=5", f"out_dir={ig_scores}"]
    assert main(args) == 1
    one_line_error(capsys, "other settings", "ig_steps")


def test_another_runs_maps_are_never_overwritten(runs, ig_scores, tmp_path, capsys):
    record = ig_scores / "maps" / "adni-baseline-full" / "run.json"
    held = json.loads(record.read_text())
    other = tmp_path / "other"
    other.mkdir()
    shutil.copytree(ig_scores / "maps", other / "maps")
    faked = {**held, "seeds": {seed: "0" * 16 for seed in held["seeds"]}}
    (other / "maps" / "adni-baseline-full" / "run.json").write_text(json.dumps(faked))
    args = ["interpret", str(runs.baseline), "method=ig", "ig.steps=8", f"out_dir={other}"]
    assert main(args) == 1
    one_line_error(capsys, "holds the maps of another run")


def test_bad_inputs_are_one_line(runs, tmp_path, capsys):
    assert main(["interpret", str(tmp_path / "nowhere")]) == 1
    one_line_error(capsys, "nowhere", "not a folder")
    assert main(["interpret", str(runs.pif), "method=saliency"]) == 1
    one_line_error(capsys, "method=", "ig, gradcam, occlusion, lrp")
    half = shutil.copytree(runs.pif, tmp_path / "half")
    (half / "seed-0" / rundir.METRICS_FILE).unlink()
    assert main(["interpret", str(half)]) == 1
    one_line_error(capsys, "half-written")


def test_maps_of_the_images_of_a_manifest_without_labels(runs, tmp_path):
    images = pd.read_csv(runs.manifest).head(3).drop(columns="label")
    images["path"] = [str(runs.manifest.parent / path) for path in images["path"]]
    manifest = tmp_path / "new.csv"
    images.to_csv(manifest, index=False)
    args = ["interpret", str(runs.pif), "method=gradcam", "seeds=1", f"data.manifest={manifest}",
            f"out_dir={tmp_path / 'out'}", f"data.cache_dir={tmp_path / 'cache'}",
            "data.progress=false", "mni152=true"]  # fmt: skip
    assert main(args) == 0
    folder = tmp_path / "out" / "maps" / "adni-pif-full" / "gradcam" / "seed-0" / "trained"
    assert len(list(folder.glob("sub-*.nii.gz"))) == 3
    assert (folder / "mean_abs_all.nii.gz").is_file() and not (folder / "mean_AD.nii.gz").exists()
    # the arm's mean also on the 1 mm MNI152 template's grid (nilearn's, 197x233x189)
    template = nib.load(folder.parent.parent / "trained" / "mean_abs_all_mni152.nii.gz")
    assert template.shape == (197, 233, 189)
    np.testing.assert_allclose(np.diag(template.affine)[:3], [1, 1, 1])


# ----------------------------------------------------------------------------- the methods


def _network(pif=None, activation="relu"):
    blocks = (BlockSpec(4, 3, 0, (2, 2)), BlockSpec(6, 3, 0, (2, 2)))
    name = "pif" if pif else "baseline"
    spec = NetworkSpec(name, name, SHAPE, blocks, (8,), activation, True, 0.0, activation, pif)
    return random_network(spec, 3)


PIF_LAYERS = [PifSpec(3, 5, 3), PifSpec(3, 5, 3, overlap=True), PifSpec(3, 5, 3, reassemble=True)]


@pytest.mark.parametrize("pif", [None, *PIF_LAYERS], ids=["baseline", "pif", "overlap", "whole"])
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_works_with_the_pif_layer(pif, method):
    model = _network(pif)
    x = torch.rand(2, 1, *SHAPE)
    spec = AttributionSpec(ig_steps=4, occlusion_window=16, occlusion_stride=16)
    maps = attribute(model, x, method, spec)
    assert maps.shape == (2, *SHAPE) and torch.isfinite(maps).all()
    assert maps.abs().sum() > 0
    # the network itself is untouched (LRP works on a copy)
    assert not any(hasattr(layer, "rule") for layer in model.modules())


@pytest.mark.parametrize("pif", [None, *PIF_LAYERS], ids=["baseline", "pif", "overlap", "whole"])
def test_lrp_conserves_the_logit_through_the_pif_layer(pif):
    model = _network(pif)
    for name, parameter in model.named_parameters():
        if "bias" in name:  # without biases epsilon-LRP loses no relevance
            nn.init.zeros_(parameter)
    x = torch.rand(2, 1, *SHAPE)
    relevance = attribute(model, x, "lrp", AttributionSpec(lrp_epsilon=1e-12))
    logit = model(x)[:, 0].detach()
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logit, rtol=1e-3, atol=1e-6)


def test_lrp_refuses_layers_it_has_no_rule_for():
    with pytest.raises(PifexpError, match="ELU"):
        check_lrp(_network(PifSpec(3, 5, 3), activation="elu"))


def test_gradcam_looks_at_the_last_convolution():
    assert gradcam_layer(_network(), "last") == "act2"
    assert gradcam_layer(_network(PifSpec(3, 5, 3)), "last") == "pif_act"
    with pytest.raises(PifexpError, match="gradcam.layer"):
        gradcam_layer(_network(), "conv9")


@pytest.mark.parametrize("overlap", [False, True])
def test_pif_gradcam_puts_each_patch_where_it_lies(overlap):
    layer = PatchIndividualFilters3d(2, 1, (10, 15, 10), 5, 3, overlap=overlap, reassemble=False)
    per_patch = torch.zeros(1, layer.num_patches + layer.num_overlap_patches, 3, 3, 3)
    per_patch[0, : layer.num_patches] = torch.arange(1.0, layer.num_patches + 1)[
        :, None, None, None
    ]
    volume = patch_maps_to_volume(per_patch, layer)[0, 0]
    assert volume.shape == (10, 15, 10)
    nd, nh, nw = layer.grid
    for patch in range(layer.num_patches):  # row-major over (D, H, W); centre of each patch
        d, h, w = patch // (nh * nw), patch // nw % nh, patch % nw
        assert volume[5 * d + 2, 5 * h + 2, 5 * w + 2] == pytest.approx(patch + 1)


def test_feature_maps_land_where_their_receptive_fields_are_centred():
    # conv 3 (+1), pool 2 (+0.5, then step 2), conv 3 (+2), pool 2 (+1, then step 4)
    start, step = feature_geometry(_network().children())
    torch.testing.assert_close(start, torch.full((3,), 4.5))
    torch.testing.assert_close(step, torch.full((3,), 4.0))
    features = torch.rand(2, 1, 4, 5, 3)
    placed = on_input_grid(features, torch.tensor([2.0, 1.0, 3.0]), torch.tensor([3.0, 2.0, 4.0]),
                           (14, 12, 16))  # fmt: skip
    # input voxel start + f * step holds feature f; beyond the last centre, the last one's value
    torch.testing.assert_close(placed[:, :, 2:12:3, 1:11:2, 3:12:4], features)
    torch.testing.assert_close(placed[:, :, 13, 11, 15], features[:, :, 3, 4, 2])
    torch.testing.assert_close(placed[:, :, 0, 0, 0], features[:, :, 0, 0, 0])


def test_random_weights_are_fixed_by_the_seed():
    first, second = _network(PifSpec(3, 5, 3)), _network(PifSpec(3, 5, 3))
    assert torch.equal(first.pif.weight, second.pif.weight)

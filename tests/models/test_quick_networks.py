"""The quick profile's networks keep the paper's design in small: one trunk, then either the
baseline's last block or a PIF block of (nearly) the same size; the control and the ablations
are the same network with one thing changed."""

import math

import pytest
import torch

from pifexp.cli import main
from pifexp.errors import ConfigError
from pifexp.experiments.specs import network_spec_of
from pifexp.layers import PatchBatchNorm3d
from pifexp.models import NetworkSpec, build_model
from pifexp.models.summary import arms_table, shared_blocks

TASKS = ["ukb", "adni", "ms"]


def quick_spec(compose_config, task, model, *overrides):
    overrides = [f"task={task}", f"model={model}", "profile=quick", *overrides]
    return network_spec_of(compose_config("model_summary", overrides))


@pytest.mark.parametrize("networks", ["text", "code2019"])
@pytest.mark.parametrize("task", TASKS)
def test_both_arms_share_the_trunk_and_differ_in_a_last_layer_of_the_same_size(
    compose_config, task, networks
):
    specs = {model: quick_spec(compose_config, task, model, f"networks={networks}")
             for model in ("baseline", "pif")}  # fmt: skip
    # the PIF network is the baseline's trunk (all its blocks but the last) + a PIF block
    assert shared_blocks(list(specs.values())) == len(specs["pif"].features)
    assert len(specs["baseline"].features) == len(specs["pif"].features) + 1
    table = arms_table(specs)
    if (task, networks) == ("ukb", "code2019"):  # the 2019 UKB baseline alone had BatchNorm
        assert table.loc["trunk", "baseline"] > table.loc["trunk", "pif"] > 0
    else:
        assert table.loc["trunk", "baseline"] == table.loc["trunk", "pif"] > 0
    last_ratio = table.loc["last layers", "pif"] / table.loc["last layers", "baseline"]
    assert 0.9 <= last_ratio <= 1.1, table
    total_ratio = table.loc["total", "pif"] / table.loc["total", "baseline"]
    assert 0.9 <= total_ratio <= 1.1, table


@pytest.mark.parametrize("task", TASKS)
def test_the_quick_patch_grid_has_no_mostly_padded_row(compose_config, task):
    with torch.device("meta"):
        network = build_model(quick_spec(compose_config, task, "pif"))
    pif = network.pif
    assert pif.grid == (2, 3, 2)  # 12 patches, as in the paper's ADNI network
    for size, patch, count in zip(pif.input_shape, pif.patch_size, pif.grid, strict=True):
        last_row_real = size - (count - 1) * patch  # the voxels of the last patch that are data
        assert last_row_real / patch > 0.5, (pif.input_shape, pif.patch_size)


def test_the_text_pif_block_is_conv_batchnorm_activation_per_patch(compose_config):
    with torch.device("meta"):
        network = build_model(quick_spec(compose_config, "adni", "pif"))
        code2019 = build_model(quick_spec(compose_config, "adni", "pif", "networks=code2019"))
    names = [name for name, _ in network.named_children()]
    assert names[names.index("pif") : names.index("pif") + 3] == ["pif", "pif_bn", "pif_act"]
    norm = network.pif_bn
    assert isinstance(norm, PatchBatchNorm3d)
    assert norm.num_features == network.pif.out_channels * network.pif.num_patches
    assert not hasattr(code2019, "pif_bn")  # the 2019 code had no normalisation


def test_a_network_json_without_the_pif_batch_norm_builds_the_earlier_network(compose_config):
    spec = quick_spec(compose_config, "adni", "pif")
    old = spec.to_json()
    for key in ("batch_norm", "single_patch"):
        del old["pif"][key]
    again = NetworkSpec.from_json(old)
    assert not again.pif.batch_norm and not again.pif.single_patch
    assert "pif_bn" not in dict(build_model(again).named_children())


def test_the_one_patch_control_is_a_shared_convolution_in_the_pif_layers_place(compose_config):
    pif_spec = quick_spec(compose_config, "adni", "pif")
    control_spec = quick_spec(compose_config, "adni", "pif", "model.pif.single_patch=true")
    torch.manual_seed(0)
    control = build_model(control_spec)
    pif = build_model(pif_spec)
    assert control.pif.grid == (1, 1, 1) and control.pif.patch_size == pif.pif.input_shape
    assert control.pif.out_channels == pif.pif.out_channels
    assert control_spec.features == pif_spec.features and control_spec.hidden == pif_spec.hidden
    # one patch of the PIF layer computes what a plain Conv3d with its weights computes
    x = torch.randn(2, control.pif.in_channels, *control.pif.input_shape)
    conv = torch.nn.Conv3d(control.pif.in_channels, control.pif.out_channels, 3)
    with torch.no_grad():
        conv.weight.copy_(control.pif.weight[0])
        conv.bias.copy_(control.pif.bias[0])
        expected = conv(x)
        got = control.pif(x)[:, :, 0]  # (B, C, P=1, d, h, w)
    torch.testing.assert_close(got, expected)


def test_single_patch_refuses_the_overlapping_grid(compose_config):
    with pytest.raises(ConfigError, match="single_patch.*overlap"):
        quick_spec(compose_config, "adni", "pif", "model.pif.single_patch=true",
                   "model.overlap=true")  # fmt: skip


def test_trunk_blocks_moves_the_pif_layer_earlier(compose_config):
    spec = quick_spec(compose_config, "adni", "pif", "model.trunk_blocks=2")
    full = quick_spec(compose_config, "adni", "pif")
    assert spec.features == full.features[:2]
    network = build_model(spec)
    assert network.pif.in_channels == full.features[1].channels
    assert network(torch.randn(2, 1, *spec.input_shape)).shape == (2, 1)
    with pytest.raises(ConfigError, match="model.trunk_blocks=9 must be an integer from 1 to 4"):
        quick_spec(compose_config, "adni", "pif", "model.trunk_blocks=9")
    with pytest.raises(ConfigError, match="PIF networks only"):
        quick_spec(compose_config, "adni", "baseline", "+model.trunk_blocks=2")


def test_model_summary_shows_the_arms_side_by_side(capsys):
    assert main(["model", "summary", "profile=quick", "task=adni"]) == 0
    out = capsys.readouterr().out
    side_by_side = out.split("The arms of task adni (quick profile, text networks):")[1]
    header, _, trunk, last, classifier, total = side_by_side.strip().splitlines()[:6]
    assert header.split() == ["baseline", "pif", "pif-one-patch"]
    counts = {line.split()[0]: [int(v.replace(",", "")) for v in line.split()[-3:]]
              for line in (trunk, last, classifier, total)}  # fmt: skip
    assert counts["trunk"][0] == counts["trunk"][1] == counts["trunk"][2]
    assert math.isclose(counts["last"][1], counts["last"][0], rel_tol=0.1)
    assert [sum(column) for column in zip(counts["trunk"], counts["last"], counts["classifier"],
                                          strict=True)] == counts["total"]  # fmt: skip

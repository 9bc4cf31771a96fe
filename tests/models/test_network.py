import math

import pytest
import torch

from pifexp.errors import ConfigError
from pifexp.experiments.specs import network_spec_of
from pifexp.layers import PatchIndividualFilters3d
from pifexp.models import NetworkSpec, build_model
from pifexp.models.summary import summarize


def model_for(compose_config, task, model, *overrides, device="meta"):
    cfg = compose_config("model_summary", [f"task={task}", f"model={model}", *overrides])
    with torch.device(device):
        network = build_model(network_spec_of(cfg))
    return cfg, network


def parameter_count(network):
    return sum(p.numel() for p in network.parameters())


@pytest.mark.parametrize(
    ("task", "pif_input", "outputs_per_patch", "patches"),
    # protocol.md: PIF input 15x19x15 (UKB) and 10x13x10 (ADNI, MS), 8 / 3 / 4 outputs per patch
    [
        ("ukb", (15, 19, 15), 8, 3 * 4 * 3),
        ("adni", (10, 13, 10), 3, 2 * 3 * 2),
        ("ms", (10, 13, 10), 4, 12),
    ],
)
def test_pif_networks_follow_the_paper(compose_config, task, pif_input, outputs_per_patch, patches):
    _, network = model_for(compose_config, task, "pif")
    pif = network.pif
    assert isinstance(pif, PatchIndividualFilters3d)
    assert pif.input_shape == pif_input
    assert pif.in_channels == 64 and pif.out_channels == outputs_per_patch
    assert pif.patch_size == (5, 5, 5) and pif.kernel_size == 3
    assert not pif.overlap and not pif.reassemble
    assert network.fc1.in_features == patches * outputs_per_patch * 27
    assert network.fc1.out_features == 100


def test_adni_baseline_flattens_to_1296(compose_config):
    # protocol.md: Baseline-B is conv 64 x4 + conv 36 -> 1,296 -> 80 -> 1
    _, network = model_for(compose_config, "adni", "baseline")
    convs = [m for m in network if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [64, 64, 64, 64, 36]
    assert (network.fc1.in_features, network.fc1.out_features) == (1296, 80)


def test_ukb_and_ms_baselines(compose_config):
    _, ukb = model_for(compose_config, "ukb", "baseline")
    assert [m.out_channels for m in ukb if isinstance(m, torch.nn.Conv3d)] == [16, 32, 64, 32, 16]
    assert ukb.fc1.out_features == 512
    _, ms = model_for(compose_config, "ms", "baseline")
    assert [m.out_channels for m in ms if isinstance(m, torch.nn.Conv3d)] == [64] * 4
    assert not hasattr(ms, "fc1") and ms.logit.out_features == 1  # 4x conv64 -> 1 logit


def test_parameter_counts_are_in_the_papers_order(compose_config):
    # the paper: fewer parameters in the PIF networks for UKB and ADNI, more for MS
    counts = {
        (task, model): parameter_count(model_for(compose_config, task, model)[1])
        for task in ("ukb", "adni", "ms")
        for model in ("baseline", "pif")
    }
    assert counts["ukb", "pif"] < counts["ukb", "baseline"]
    assert counts["adni", "pif"] < counts["adni", "baseline"]
    assert counts["ms", "pif"] > counts["ms", "baseline"]
    # sizes of a small 3D CNN of the period: between 0.2 and 5 million parameters
    assert all(2e5 < n < 5e6 for n in counts.values()), counts


@pytest.mark.parametrize("model", ["baseline", "pif"])
def test_networks_build_for_other_input_shapes_and_train(compose_config, model):
    shape = [72, 84, 72]
    _, network = model_for(compose_config, "adni", model, f"task.input_shape={shape}", device="cpu")
    x = torch.randn(2, 1, *shape)
    logits = network(x)
    assert logits.shape == (2, 1)
    logits.sum().backward()
    assert all(p.grad is not None for p in network.parameters())


def test_summary_reports_every_layer_with_shapes_and_counts(compose_config):
    cfg, network = model_for(compose_config, "adni", "pif")
    table = summarize(network, cfg.task.input_shape)
    assert list(table.layer)[-1] == "logit"
    assert table.set_index("layer").loc["pif", "output_shape"] == "3x12x3x3x3"
    assert table.parameters.sum() == parameter_count(network)
    pif_params = 12 * 3 * (64 * 27 + 1)
    assert table.set_index("layer").loc["pif", "parameters"] == pif_params


def test_input_too_small_for_the_feature_stack_is_a_config_error(compose_config):
    with pytest.raises(ConfigError, match=r"model.features.*input shape \(8, 8, 8\)"):
        model_for(compose_config, "adni", "baseline", "task.input_shape=[8,8,8]")


def test_unknown_activation_names_the_setting(compose_config):
    with pytest.raises(ConfigError, match="model.activation='tanhh'"):
        model_for(compose_config, "adni", "pif", "model.activation=tanhh")


def test_pif_flattened_size_matches_layer(compose_config):
    _, network = model_for(compose_config, "ukb", "pif")
    assert network.fc1.in_features == math.prod(network.pif.output_shape())


@pytest.mark.parametrize("model", ["baseline", "pif"])
def test_a_spec_read_back_from_json_builds_the_same_network(compose_config, model):
    cfg = compose_config(
        "model_summary", ["task=ms", f"model={model}", "model.overlap=true", "model.dropout=0.3"]
    )
    spec = network_spec_of(cfg)
    again = NetworkSpec.from_json(spec.to_json())
    assert again == spec
    torch.manual_seed(0)
    first = build_model(spec)
    torch.manual_seed(0)
    second = build_model(again)
    assert str(first) == str(second)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items(),
                                 strict=True):  # fmt: skip
        assert torch.equal(a, b), name

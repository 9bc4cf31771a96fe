import json
import math

import pytest
import torch

from pifexp.cli import main
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


# the authors' 2019 notebooks print these trainable parameter counts (count_parameters(net))
CODE2019_COUNTS = {
    ("ukb", "baseline"): 3_752_849, ("ukb", "pif"): 1_348_665,
    ("adni", "baseline"): 499_845, ("adni", "pif"): 493_405,
    ("ms", "baseline"): 333_889, ("ms", "pif"): 493_405,
}  # fmt: skip
# the text networks' PIF block has a BatchNorm per patch and channel (2 parameters each)
TEXT_COUNTS = {
    ("ukb", "baseline"): 2_499_473, ("ukb", "pif"): 1_348_905 + 2 * 36 * 8,
    ("adni", "baseline"): 500_429, ("adni", "pif"): 493_917 + 2 * 12 * 3,
    ("ms", "baseline"): 337_153, ("ms", "pif"): 547_065 + 2 * 12 * 4,
}  # fmt: skip


def summary_total(capsys, *overrides):
    assert main(["model", "summary", *overrides]) == 0
    out = capsys.readouterr().out
    total = out.split("total parameters: ")[1].splitlines()[0]
    return out.splitlines()[0], int(total.replace(",", ""))


@pytest.mark.parametrize(("task", "model"), list(CODE2019_COUNTS))
def test_model_summary_counts_the_authors_parameters_under_paper2019(capsys, task, model):
    title, total = summary_total(capsys, f"task={task}", f"model={model}", "protocol=paper2019")
    assert total == CODE2019_COUNTS[task, model]
    assert "(2019 code)" in title


@pytest.mark.parametrize(("task", "model"), list(TEXT_COUNTS))
def test_model_summary_keeps_the_text_networks_by_default(capsys, task, model):
    title, total = summary_total(capsys, f"task={task}", f"model={model}")
    assert total == TEXT_COUNTS[task, model]
    assert "2019 code" not in title
    # the fair protocol keeps them; networks=code2019 selects the 2019 ones under any protocol
    assert summary_total(capsys, f"task={task}", f"model={model}", "protocol=fair")[1] == total
    assert summary_total(capsys, f"task={task}", f"model={model}", "networks=code2019")[1] == (
        CODE2019_COUNTS[task, model]
    )


@pytest.mark.parametrize(
    ("task", "model", "pools", "flattened", "hidden"),
    # (kernel, stride) of each max pooling, the flattened features and the hidden width, as the
    # 2019 notebooks' SixtyFourNet classes have them
    [
        ("ukb", "baseline", [(3, 2), (3, 3), (4, 3)], 7056, 512),
        ("ukb", "pif", [(3, 3), (3, 3)], 7776, 100),
        ("adni", "baseline", [(3, 3), (3, 2), (4, 2)], 1296, 80),
        ("adni", "pif", [(3, 3), (3, 2)], 972, 100),
        ("ms", "baseline", [(3, 3), (3, 3), (3, 3)], 128, None),
        ("ms", "pif", [(3, 3), (3, 2)], 972, 100),
    ],
)
def test_the_2019_networks_layer_by_layer(compose_config, task, model, pools, flattened, hidden):
    _, network = model_for(compose_config, task, model, "networks=code2019")
    names = [name for name, _ in network.named_children()]
    layers = dict(network.named_children())
    maxpools = [m for m in network if isinstance(m, torch.nn.MaxPool3d)]
    assert [(m.kernel_size, m.stride) for m in maxpools] == pools
    # Dropout3d(0.3) right after every pooling
    for name in names:
        if name.startswith("pool"):
            following = layers[names[names.index(name) + 1]]
            assert isinstance(following, torch.nn.Dropout3d) and following.p == 0.3
    ukb_baseline = (task, model) == ("ukb", "baseline")
    activations = {type(m) for m in network if isinstance(m, torch.nn.ReLU | torch.nn.ELU)}
    assert activations == ({torch.nn.ReLU} if ukb_baseline else {torch.nn.ELU})
    has_batch_norm = any(isinstance(m, torch.nn.BatchNorm3d) for m in network)
    assert has_batch_norm == ukb_baseline
    if model == "pif":  # ELU on every patch's output
        assert names[names.index("pif") + 1] == "pif_act"
        assert isinstance(network.pif_act, torch.nn.ELU)
    first_linear = network.fc1 if hidden else network.logit
    assert first_linear.in_features == flattened
    if hidden:  # Linear straight into Linear
        assert network.fc1.out_features == hidden
        assert names[names.index("fc1") + 1] == "logit"


def test_the_2019_ms_pif_network_has_3_outputs_per_patch_and_2021_has_4(compose_config):
    _, code2019 = model_for(compose_config, "ms", "pif", "protocol=paper2019")
    _, text = model_for(compose_config, "ms", "pif")
    assert (code2019.pif.out_channels, text.pif.out_channels) == (3, 4)


@pytest.mark.parametrize("task", ["ukb", "adni", "ms"])
@pytest.mark.parametrize("model", ["baseline", "pif"])
def test_the_quick_2019_style_networks_train_on_the_quick_grid(compose_config, task, model):
    cfg, network = model_for(compose_config, task, model, "protocol=paper2019", "profile=quick",
                             device="cpu")  # fmt: skip
    spec = network_spec_of(cfg)
    assert spec.architecture.endswith("(quick, 2019 code style)")
    assert spec.features == network_spec_of(compose_config(
        "model_summary", [f"task={task}", f"model={model}", "profile=quick"])).features
    assert spec.head_activation == "none" and spec.dropout == 0.3
    x = torch.randn(2, 1, *cfg.task.input_shape)
    network(x).sum().backward()
    assert all(p.grad is not None for p in network.parameters())


@pytest.mark.parametrize("networks", ["text", "code2019"])
@pytest.mark.parametrize("task", ["ukb", "ms"])
def test_2019_specs_read_back_from_json(compose_config, networks, task):
    cfg = compose_config("model_summary", [f"task={task}", "model=baseline",
                                           f"networks={networks}"])  # fmt: skip
    spec = network_spec_of(cfg)
    again = NetworkSpec.from_json(json.loads(json.dumps(spec.to_json())))
    assert again == spec
    assert str(build_model(again)) == str(build_model(spec))


def test_a_network_json_without_head_activation_still_loads(compose_config):
    # network.json as earlier versions wrote it: the head had the blocks' activation
    spec = network_spec_of(compose_config("model_summary", ["task=adni", "model=pif"]))
    old = spec.to_json()
    del old["head_activation"]
    again = NetworkSpec.from_json(old)
    assert again.head_activation == "relu" and again == spec
    names = [name for name, _ in build_model(again).named_children()]
    assert names[names.index("fc1") + 1] == "fc1_act"


def test_unknown_head_activation_names_the_setting(compose_config):
    with pytest.raises(ConfigError, match="model.head_activation='tanh'"):
        model_for(compose_config, "adni", "pif", "model.head_activation=tanh")

"""The paper's baseline and PIF 3D CNNs, built from config for any input shape."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from pifexp.errors import ConfigError
from pifexp.layers import PatchIndividualFilters3d

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}


def build_model(model_cfg: Mapping[str, Any], input_shape: Sequence[int]) -> nn.Sequential:
    """Build the network that `model_cfg` describes for single-channel volumes of `input_shape`.

    The shapes that depend on the input (the PIF layer's `input_shape`, the flattened size of the
    classifier) are found by running the feature stack on a meta tensor, so no setting has to be
    recomputed by hand when the grid changes. The network maps (B, 1, D, H, W) to (B, 1) logits.
    """
    activation = _activation(model_cfg)
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 1
    for index, block in enumerate(model_cfg["features"], start=1):
        out_channels = int(block["channels"])
        layers[f"conv{index}"] = nn.Conv3d(
            channels,
            out_channels,
            kernel_size=int(block.get("kernel", model_cfg["conv_kernel"])),
            padding=int(block.get("padding", model_cfg["conv_padding"])),
        )
        if model_cfg["batch_norm"]:
            layers[f"bn{index}"] = nn.BatchNorm3d(out_channels)
        layers[f"act{index}"] = activation()
        if block.get("pool"):
            kernel, stride = block["pool"]
            layers[f"pool{index}"] = nn.MaxPool3d(kernel_size=int(kernel), stride=int(stride))
            if model_cfg["dropout"]:
                layers[f"drop{index}"] = nn.Dropout3d(float(model_cfg["dropout"]))
        channels = out_channels

    feature_shape = _output_shape(nn.Sequential(layers), input_shape)
    pif_cfg = model_cfg.get("pif")
    if pif_cfg:
        layers["pif"] = PatchIndividualFilters3d(
            in_channels=channels,
            out_channels=int(pif_cfg["out_channels"]),
            input_shape=feature_shape[1:],
            patch_size=pif_cfg["patch_size"],
            kernel_size=int(pif_cfg["kernel_size"]),
            stride=int(pif_cfg.get("stride", 1)),
            padding=int(pif_cfg.get("padding", 0)),
            overlap=bool(pif_cfg.get("overlap", False)),
            reassemble=bool(pif_cfg.get("reassemble", False)),
        )
        layers["pif_act"] = activation()
        feature_shape = layers["pif"].output_shape()

    layers["flatten"] = nn.Flatten()
    width = int(torch.Size(feature_shape).numel())
    for index, hidden in enumerate(model_cfg["hidden"], start=1):
        layers[f"fc{index}"] = nn.Linear(width, int(hidden))
        layers[f"fc{index}_act"] = activation()
        width = int(hidden)
    layers["logit"] = nn.Linear(width, 1)
    return nn.Sequential(layers)


def _activation(model_cfg: Mapping[str, Any]) -> type[nn.Module]:
    name = model_cfg["activation"]
    if name not in ACTIVATIONS:
        raise ConfigError(f"model.activation={name!r} is not one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _output_shape(features: nn.Module, input_shape: Sequence[int]) -> tuple[int, ...]:
    """Per-sample output shape of `features` for a (1, *input_shape) volume, computed on meta."""
    probe = torch.empty(1, 1, *input_shape, device="meta")
    try:
        with torch.no_grad():
            shape = copy.deepcopy(features).to("meta")(probe).shape[1:]
    except RuntimeError as error:
        raise ConfigError(
            f"the feature stack (model.features) does not fit the input shape {tuple(input_shape)}:"
            f" {str(error).splitlines()[0]}"
        ) from None
    return tuple(shape)

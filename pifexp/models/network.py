"""The paper's baseline and PIF 3D CNNs, built from a network spec for any input shape."""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from pifexp.errors import ConfigError
from pifexp.layers import PatchBatchNorm3d, PatchIndividualFilters3d
from pifexp.models.spec import NetworkSpec, PifSpec

ACTIVATION_MODULES: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "elu": nn.ELU}


def build_model(spec: NetworkSpec) -> nn.Sequential:
    """The network that `spec` describes, for single-channel volumes of `spec.input_shape`.

    The shapes that depend on the input (the PIF layer's `input_shape`, the flattened size of the
    classifier) are found by running the feature stack on a meta tensor, so no setting has to be
    recomputed by hand when the grid changes. The network maps (B, 1, D, H, W) to (B, 1) logits.
    """
    activation = ACTIVATION_MODULES[spec.activation]
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 1
    for index, block in enumerate(spec.features, start=1):
        layers[f"conv{index}"] = nn.Conv3d(
            channels, block.channels, kernel_size=block.kernel, padding=block.padding
        )
        if spec.batch_norm:
            layers[f"bn{index}"] = nn.BatchNorm3d(block.channels)
        layers[f"act{index}"] = activation()
        if block.pool:
            kernel, stride = block.pool
            layers[f"pool{index}"] = nn.MaxPool3d(kernel_size=kernel, stride=stride)
            if spec.dropout:
                layers[f"drop{index}"] = nn.Dropout3d(spec.dropout)
        channels = block.channels

    feature_shape = _output_shape(nn.Sequential(layers), spec.input_shape)
    if spec.pif is not None:
        layers["pif"] = _pif_layer(spec.pif, channels, feature_shape[1:])
        if spec.pif.batch_norm:
            layers["pif_bn"] = _pif_norm(layers["pif"])
        layers["pif_act"] = activation()
        feature_shape = layers["pif"].output_shape()

    layers["flatten"] = nn.Flatten()
    width = int(torch.Size(feature_shape).numel())
    for index, hidden in enumerate(spec.hidden, start=1):
        layers[f"fc{index}"] = nn.Linear(width, hidden)
        if spec.head_activation != "none":
            layers[f"fc{index}_act"] = ACTIVATION_MODULES[spec.head_activation]()
        width = hidden
    layers["logit"] = nn.Linear(width, 1)
    return nn.Sequential(layers)


def _pif_layer(
    pif: PifSpec, in_channels: int, input_shape: Sequence[int]
) -> PatchIndividualFilters3d:
    """The PIF layer on features of `input_shape`; the single-patch control gets one patch over
    all of them (its filters shared everywhere: a plain convolution)."""
    patch_size = tuple(input_shape) if pif.single_patch else pif.patch_size
    try:
        return PatchIndividualFilters3d(
            in_channels=in_channels,
            out_channels=pif.out_channels,
            input_shape=tuple(input_shape),
            patch_size=patch_size,
            kernel_size=pif.kernel_size,
            stride=pif.stride,
            padding=pif.padding,
            overlap=pif.overlap,
            reassemble=pif.reassemble,
        )
    except ValueError as error:
        raise ConfigError(f"model.pif: {error}") from None


def _pif_norm(pif: PatchIndividualFilters3d) -> nn.Module:
    """BatchNorm per patch and channel; a reassembled output is one volume: per channel."""
    channels, *rest = pif.output_shape()
    if pif.reassemble:
        return nn.BatchNorm3d(channels)
    return PatchBatchNorm3d(channels, rest[0])


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

"""A network described as data: what `build_model` builds, and what is saved beside a checkpoint
(network.json) so that the checkpoint alone rebuilds its network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pifexp.errors import ConfigError

ACTIVATIONS = ("relu", "elu")
# between the classifier's Linear layers; none: Linear straight into Linear (the 2019 code)
HEAD_ACTIVATIONS = (*ACTIVATIONS, "none")


@dataclass(frozen=True)
class BlockSpec:
    """Conv3d (no bias change) -> [BatchNorm3d] -> activation -> [MaxPool3d -> [Dropout3d]]."""

    channels: int
    kernel: int
    padding: int
    pool: tuple[int, int] | None  # (kernel, stride) of a max pooling after the block


@dataclass(frozen=True)
class PifSpec:
    """The PIF layer after the feature blocks (see PatchIndividualFilters3d).

    `batch_norm`: a BatchNorm per patch and channel on the layer's output (PatchBatchNorm3d;
    per channel on a reassembled output), before the activation. `single_patch`: the control
    arm, one patch covering the layer's whole input (`patch_size` ignored): the same filters
    per location, shared everywhere, i.e. a plain convolution in the PIF layer's place, with the
    same classifier after it.
    """

    out_channels: int
    patch_size: int | tuple[int, int, int]
    kernel_size: int
    stride: int = 1
    padding: int = 0
    overlap: bool = False
    reassemble: bool = False
    batch_norm: bool = False
    single_patch: bool = False


@dataclass(frozen=True)
class NetworkSpec:
    """A baseline (features -> hidden -> logit) or PIF network (features -> PIF -> hidden ->
    logit) for single-channel volumes of `input_shape`.

    `activation` follows every convolution and the PIF layer (an activation on each patch's
    output is the same function on the layer's output); `batch_norm` puts a BatchNorm3d between
    each convolution and its activation; `head_activation` follows every hidden Linear layer.
    """

    name: str  # baseline | pif
    architecture: str
    input_shape: tuple[int, int, int]
    features: tuple[BlockSpec, ...]
    hidden: tuple[int, ...]
    activation: str
    batch_norm: bool
    dropout: float
    head_activation: str
    pif: PifSpec | None = None

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"model.activation={self.activation!r} is not one of {sorted(ACTIVATIONS)}"
            )
        if self.head_activation not in HEAD_ACTIVATIONS:
            raise ConfigError(
                f"model.head_activation={self.head_activation!r} is not one of "
                f"{sorted(HEAD_ACTIVATIONS)}"
            )
        if len(self.input_shape) != 3 or min(self.input_shape) < 1:
            raise ConfigError(
                f"task.input_shape={list(self.input_shape)} must be three positive voxel counts"
            )
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"model.dropout={self.dropout} must lie in [0, 1)")
        if any(block.channels < 1 for block in self.features) or any(h < 1 for h in self.hidden):
            raise ConfigError("model.features channels and model.hidden sizes must be >= 1")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> NetworkSpec:
        """The inverse of to_json (network.json). Files written before head_activation existed
        had the blocks' activation between the Linear layers, which is what they get."""
        pif = data.get("pif")
        return cls(
            name=str(data["name"]),
            architecture=str(data["architecture"]),
            input_shape=_shape(data["input_shape"]),
            features=tuple(
                BlockSpec(int(b["channels"]), int(b["kernel"]), int(b["padding"]),
                          _pool(b["pool"]))
                for b in data["features"]
            ),  # fmt: skip
            hidden=tuple(int(h) for h in data["hidden"]),
            activation=str(data["activation"]),
            batch_norm=bool(data["batch_norm"]),
            dropout=float(data["dropout"]),
            head_activation=str(data.get("head_activation", data["activation"])),
            pif=None if not pif else _pif(pif, bool(pif.get("overlap", False))),
        )


def network_spec(model: Mapping[str, Any], input_shape: Sequence[int]) -> NetworkSpec:
    """The network of a config's `model` node as plain data: model/<name>.yaml's shared settings
    (activation, batch_norm, head_activation, dropout, overlap, conv_kernel, conv_padding,
    trunk_blocks), those of networks/<variant>.yaml, and the layers of
    network/<profile>/<variant>/<task>_<model>.yaml (features, pif, hidden; a network file may
    set the shared settings too). Without head_activation (run folders of earlier versions) the
    head takes the blocks' activation."""
    try:
        pif = model.get("pif")
        features = _trunk(list(model["features"]), model.get("trunk_blocks"), pif is not None)
        # one overlap key (model.overlap); run folders of earlier versions kept it in model.pif
        overlap = bool(model.get("overlap", pif.get("overlap", False) if pif else False))
        return NetworkSpec(
            name=str(model.get("name", "pif" if pif else "baseline")),
            architecture=str(model.get("architecture", model.get("name", "network"))),
            input_shape=_shape(input_shape),
            features=tuple(
                BlockSpec(
                    channels=int(block["channels"]),
                    kernel=int(block.get("kernel", model["conv_kernel"])),
                    padding=int(block.get("padding", model["conv_padding"])),
                    pool=_pool(block.get("pool")),
                )
                for block in features
            ),
            hidden=tuple(int(h) for h in model["hidden"]),
            activation=str(model["activation"]),
            batch_norm=bool(model["batch_norm"]),
            dropout=float(model["dropout"] or 0.0),
            head_activation=str(model.get("head_activation", model["activation"])),
            pif=_pif(pif, overlap) if pif else None,
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ConfigError(
            f"model: the network's settings are incomplete or wrong ({error})"
        ) from None


def _trunk(features: list[Any], trunk_blocks: Any, is_pif: bool) -> list[Any]:
    """The feature blocks a network keeps: all, or for a PIF network the first `trunk_blocks`
    (model.trunk_blocks: the PIF layer's depth in the network)."""
    if trunk_blocks is None:
        return features
    if not is_pif:
        raise ConfigError("model.trunk_blocks sets the PIF layer's depth: PIF networks only")
    if isinstance(trunk_blocks, bool) or not isinstance(trunk_blocks, int) or not (
        1 <= trunk_blocks <= len(features)
    ):
        raise ConfigError(
            f"model.trunk_blocks={trunk_blocks!r} must be an integer from 1 to {len(features)} "
            "(the network's feature blocks) or null"
        )
    return features[:trunk_blocks]


def _pif(pif: Mapping[str, Any], overlap: bool) -> PifSpec:
    """model.pif (or network.json's pif) as a PifSpec; keys of later versions default to the
    networks that earlier ones built."""
    patch = pif["patch_size"]
    single_patch = bool(pif.get("single_patch", False))
    if single_patch and overlap:
        raise ConfigError(
            "model.pif.single_patch=true is one patch: it has no shifted grid (model.overlap=true)"
        )
    return PifSpec(
        out_channels=int(pif["out_channels"]),
        patch_size=int(patch) if isinstance(patch, int) else _shape(patch),
        kernel_size=int(pif["kernel_size"]),
        stride=int(pif.get("stride", 1)),
        padding=int(pif.get("padding", 0)),
        overlap=overlap,
        reassemble=bool(pif.get("reassemble", False)),
        batch_norm=bool(pif.get("batch_norm", False)),
        single_patch=single_patch,
    )


def _shape(values: Sequence[int]) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in values)
    if len(shape) != 3:
        raise ConfigError(f"task.input_shape={list(values)} must be three positive voxel counts")
    return shape  # type: ignore[return-value]


def _pool(pool: Sequence[int] | None) -> tuple[int, int] | None:
    if not pool:
        return None
    kernel, stride = pool
    return int(kernel), int(stride)

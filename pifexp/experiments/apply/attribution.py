"""Attribution maps of the networks with captum: Integrated Gradients, Grad-CAM, Occlusion and LRP,
each a (B, D, H, W) map on the network's input grid, for baselines and PIF networks alike.

The networks map (B, 1, D, H, W) volumes to one logit (class 1 against class 0), so every method
explains that logit (target 0). Grad-CAM on a PIF layer weights each patch's channels by that
patch's own mean gradient (the patches have their own filters: a channel means something else in
every patch) and puts the patches back where they lie; Grad-CAM maps go to the input grid where
their voxels' receptive fields are centred.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from captum.attr import LRP, IntegratedGradients, LayerAttribution, LayerGradCam, Occlusion
from captum.attr._utils.lrp_rules import EpsilonRule, IdentityRule
from torch import nn

from pifexp.errors import ConfigError, PifexpError
from pifexp.layers import PatchIndividualFilters3d, overlap_grid
from pifexp.models import NetworkSpec, build_model

METHODS = {
    "ig": "Integrated Gradients",
    "gradcam": "Grad-CAM",
    "occlusion": "Occlusion",
    "lrp": "LRP",
}
LAST = "last"  # gradcam.layer: the network's last convolution
TARGET = 0  # the single logit
# layers that captum's LRP gets a rule for here; any other layer stops method=lrp. The PIF layer is
# linear in its input (zero padding, reshapes, one grouped convolution), so the epsilon rule's
# gradient-times-input form is exact epsilon-LRP for it, patch by patch.
EPSILON_LAYERS = (nn.Conv3d, nn.Linear, nn.MaxPool3d, nn.Flatten, nn.Dropout3d,
                  PatchIndividualFilters3d)  # fmt: skip
IDENTITY_LAYERS = (nn.BatchNorm3d,)  # relevance passes through a normalization unchanged
PASS_LAYERS = (nn.ReLU, nn.Dropout)  # captum's own rule for them


@dataclass(frozen=True)
class AttributionSpec:
    """How each method is run (ig, gradcam, occlusion, lrp, batch_size and chunk of the
    interpret config); batch_size and chunk change only the speed."""

    ig_steps: int = 16
    gradcam_layer: str = LAST
    occlusion_window: int = 12
    occlusion_stride: int = 9
    lrp_epsilon: float = 1e-6
    batch_size: int = 8  # images at a time
    chunk: int = 32  # volumes per forward pass inside Integrated Gradients and Occlusion

    def __post_init__(self) -> None:
        for key, value in (
            ("ig.steps", self.ig_steps),
            ("occlusion.window", self.occlusion_window),
            ("occlusion.stride", self.occlusion_stride),
            ("batch_size", self.batch_size),
            ("chunk", self.chunk),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}={value!r} must be an integer >= 1")
        if not self.lrp_epsilon > 0:
            raise ConfigError(f"lrp.epsilon={self.lrp_epsilon!r} must be > 0")


def check_methods(methods: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """method=...: known names, each once."""
    unknown = [name for name in methods if name not in METHODS]
    if unknown or not methods:
        raise ConfigError(f"method={list(methods)} must name one or more of {', '.join(METHODS)}")
    return tuple(dict.fromkeys(methods))


def attribute(model: nn.Sequential, x: torch.Tensor, method: str, spec: AttributionSpec
              ) -> torch.Tensor:  # fmt: skip
    """The (B, D, H, W) attribution of the logit to each voxel of x (B, 1, D, H, W)."""
    model.eval()
    if method == "ig":
        maps = IntegratedGradients(model).attribute(
            x, baselines=torch.zeros_like(x), target=TARGET, n_steps=spec.ig_steps,
            internal_batch_size=spec.chunk,
        )  # fmt: skip
    elif method == "gradcam":
        maps = gradcam(model, x, spec.gradcam_layer)
    elif method == "occlusion":
        window, stride = (1, *[spec.occlusion_window] * 3), (1, *[spec.occlusion_stride] * 3)
        maps = Occlusion(model).attribute(
            x, sliding_window_shapes=window, strides=stride, baselines=0.0, target=TARGET,
            perturbations_per_eval=max(1, spec.chunk // len(x)),
        )  # fmt: skip
    elif method == "lrp":
        maps = lrp(model, x, spec.lrp_epsilon)
    else:
        raise ConfigError(f"method={method!r} must be one of {', '.join(METHODS)}")
    return maps[:, 0].detach()


def random_network(spec: NetworkSpec, seed: int) -> nn.Sequential:
    """The network rebuilt with freshly initialised weights (torch seed `seed`): the model
    randomisation test of Adebayo et al. (2018)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model(spec).eval()


# ----------------------------------------------------------------------------- Grad-CAM


def gradcam_layer(model: nn.Sequential, setting: str) -> str:
    """The name of the layer Grad-CAM looks at: `last` is the last convolution's activation (the
    PIF layer's in PIF networks, the last block's in baselines), or a layer named as in
    `pifexp model summary` (e.g. act2, pif)."""
    names = [name for name, _ in model.named_children()]
    if setting == LAST:
        convolutions = [name for name in names if name == "pif" or name.startswith("conv")]
        if not convolutions:
            raise PifexpError("gradcam.layer=last: the network has no convolution")
        after = names[names.index(convolutions[-1]) + 1 :]
        # the activation right after the convolution (past its normalization), as Grad-CAM uses
        activation = next((name for name in after if "act" in name), None)
        return activation or convolutions[-1]
    if setting not in names:
        raise ConfigError(f"gradcam.layer={setting!r} is not a layer of the network ({names})")
    return setting


def gradcam(model: nn.Sequential, x: torch.Tensor, setting: str) -> torch.Tensor:
    """Grad-CAM (captum's LayerGradCam) on x's grid: (B, 1, D, H, W). The map keeps its sign, as
    the other methods' do: with one logit, the ReLU of the original Grad-CAM would drop all the
    evidence for class 0 (a class-0 image would mostly get an empty map)."""
    name = gradcam_layer(model, setting)
    layers = list(model.named_children())
    names = [n for n, _ in layers]
    pif = getattr(model, "pif", None)
    if isinstance(pif, PatchIndividualFilters3d) and (
        names.index("pif") <= names.index(name) < names.index("flatten")
    ):
        maps = patch_maps_to_volume(_pif_gradcam(model, name, x, pif), pif)
        before = layers[: names.index("pif")]  # maps is on the PIF layer's input grid
    else:
        maps = LayerGradCam(model, getattr(model, name)).attribute(x, target=TARGET)
        before = layers[: names.index(name) + 1]
    return on_input_grid(maps, *feature_geometry(m for _, m in before), tuple(x.shape[2:]))


def _pif_gradcam(model: nn.Sequential, name: str, x: torch.Tensor,
                 pif: PatchIndividualFilters3d) -> torch.Tensor:  # fmt: skip
    """Per-patch Grad-CAM maps (B, P[+P2], d, h, w) at a layer from the PIF layer on."""
    layers = list(model.named_children())
    patches = pif.num_patches + pif.num_overlap_patches
    if pif.reassemble:  # a volume already: channels weighted over all of it, cut into patches
        maps = LayerGradCam(model, getattr(model, name)).attribute(x, target=TARGET)
        per_patch = _split(maps, pif.grid)
        shifted = per_patch.new_zeros(len(x), pif.num_overlap_patches, *per_patch.shape[2:])
        return torch.cat([per_patch, shifted], dim=1)  # the shifted grid is in place already
    # (B, C, P, d, h, w) viewed as (B, C*P, d, h, w): captum then averages each patch's gradient
    # on its own; the network's Flatten gives the same vector either way
    position = [n for n, _ in layers].index(name) + 1
    viewed = nn.Sequential(
        OrderedDict([*layers[:position], ("patches", nn.Flatten(1, 2)), *layers[position:]])
    )
    scaled = LayerGradCam(viewed, viewed.patches).attribute(
        x, target=TARGET, attr_dim_summation=False
    )
    return scaled.reshape(len(x), -1, patches, *scaled.shape[2:]).sum(dim=1)


def feature_geometry(layers: Iterable[nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
    """Where the output voxels of these layers (in order, from the input) sit on the input grid:
    voxel f of an axis is centred on input voxel start + f * step. Each convolution or pooling
    moves the centre by ((kernel - 1) / 2 - padding) steps and multiplies the step by its
    stride; other layers keep the grid."""
    start, step = torch.zeros(3), torch.ones(3)
    for layer in layers:
        if isinstance(layer, nn.Conv3d | nn.MaxPool3d | nn.AvgPool3d):
            kernel, stride, padding = (
                torch.as_tensor(getattr(layer, key), dtype=torch.float32).expand(3)
                for key in ("kernel_size", "stride", "padding")
            )
            start = start + ((kernel - 1) / 2 - padding) * step
            step = step * stride
    return start, step


def on_input_grid(
    maps: torch.Tensor, start: torch.Tensor, step: torch.Tensor, shape: tuple[int, ...]
) -> torch.Tensor:
    """Feature maps (B, 1, d, h, w) resampled (trilinear, torch's grid_sample) to the input grid
    where each feature voxel lies (feature_geometry); input voxels beyond the first or last
    feature centre take the nearest one's value. Valid convolutions and poolings leave a border
    and a step that a plain stretch to the input's size would misplace by several voxels."""
    axes = []
    for axis, size in enumerate(shape):
        features = maps.shape[2 + axis]
        position = (torch.arange(size, dtype=maps.dtype) - start[axis]) / step[axis]
        # grid_sample's coordinates: -1 and 1 are the centres of the first and last feature
        axes.append(2 * position / (features - 1) - 1 if features > 1 else position * 0)
    depth, height, width = torch.meshgrid(*axes, indexing="ij")
    grid = torch.stack([width, height, depth], dim=-1).expand(len(maps), *shape, 3)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)


def patch_maps_to_volume(maps: torch.Tensor, pif: PatchIndividualFilters3d) -> torch.Tensor:
    """Per-patch maps (B, P[+P2], d, h, w) put back where their patches lie on the PIF layer's
    input (B, 1, *input_shape): each patch's map stretched over its patch, the shifted grid's
    (overlap) half a patch further along every shifted dimension, both added."""
    padded = [n * p for n, p in zip(pif.grid, pif.patch_size, strict=True)]
    volume = _stretch(_reassemble(maps[:, : pif.num_patches], pif.grid), padded)
    if pif.overlap:
        grid = overlap_grid(pif.grid)
        region = [m * p for m, p in zip(grid, pif.patch_size, strict=True)]
        shifted = _stretch(_reassemble(maps[:, pif.num_patches :], grid), region)
        before = [p // 2 if n > 1 else 0 for n, p in zip(pif.grid, pif.patch_size, strict=True)]
        pads = [(b, full - r - b) for b, full, r in zip(before, padded, region, strict=True)]
        volume = volume + F.pad(shifted, [v for pair in reversed(pads) for v in pair])
    depth, height, width = pif.input_shape
    return volume[:, :, :depth, :height, :width]


def _split(volume: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """(B, 1, nD*d, nH*h, nW*w) -> (B, P, d, h, w), the inverse of _reassemble."""
    batch, _, depth, height, width = volume.shape
    nd, nh, nw = grid
    d, h, w = depth // nd, height // nh, width // nw
    blocks = volume.reshape(batch, nd, d, nh, h, nw, w).permute(0, 1, 3, 5, 2, 4, 6)
    return blocks.reshape(batch, nd * nh * nw, d, h, w)


def _reassemble(maps: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """(B, P, d, h, w), patches numbered row-major over (D, H, W) -> (B, 1, nD*d, nH*h, nW*w)."""
    batch, _, d, h, w = maps.shape
    nd, nh, nw = grid
    blocks = maps.reshape(batch, nd, nh, nw, d, h, w).permute(0, 1, 4, 2, 5, 3, 6)
    return blocks.reshape(batch, 1, nd * d, nh * h, nw * w)


def _stretch(maps: torch.Tensor, shape: list[int]) -> torch.Tensor:
    return LayerAttribution.interpolate(maps, tuple(shape), "trilinear")


# ----------------------------------------------------------------------------- LRP


def check_lrp(model: nn.Module) -> None:
    """method=lrp needs a rule for every layer: ReLU networks of convolutions, batch norms, max
    pooling, PIF and linear layers (ELU, the 2021 networks' activation, has none)."""
    known = EPSILON_LAYERS + IDENTITY_LAYERS + PASS_LAYERS
    for name, layer in model.named_children():
        if not isinstance(layer, known):
            raise PifexpError(
                f"method=lrp: captum's LRP has no rule for layer {name} ({type(layer).__name__}); "
                "it supports ReLU networks of Conv3d, BatchNorm3d, MaxPool3d, PIF and Linear "
                "layers; choose method=ig,gradcam,occlusion for this run"
            )


def lrp(model: nn.Module, x: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Epsilon-LRP (captum) with the rules above, on a copy: captum attaches and removes rules."""
    check_lrp(model)
    network = copy.deepcopy(model).eval()
    for layer in network.children():
        if isinstance(layer, IDENTITY_LAYERS):
            layer.rule = IdentityRule()
        elif isinstance(layer, EPSILON_LAYERS):
            weighted = isinstance(layer, nn.Conv3d | nn.Linear | PatchIndividualFilters3d)
            # epsilon absorbs weak relevance in weighted layers; the others only route it
            layer.rule = EpsilonRule(epsilon) if weighted else EpsilonRule()
    return LRP(network).attribute(x.clone().requires_grad_(True), target=TARGET)

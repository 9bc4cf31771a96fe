"""The patch individual filter (PIF) layer of Eitel et al.

Split the feature maps into a grid of patches, convolve every patch with its own filters (weights
are shared inside a patch, never across patches) and put the patches back where they came from.

All patches go through one grouped convolution: the patches become groups of channels, so the work
is a single `conv3d` call plus two layout copies (split and reassemble), with no Python loop over
patches or batch items.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Size3 = int | Sequence[int]


def _triple(value: Size3, name: str) -> tuple[int, int, int]:
    triple = (value,) * 3 if isinstance(value, int) else tuple(int(v) for v in value)
    if len(triple) != 3 or min(triple) < 1:
        raise ValueError(f"{name} must be a positive int or a (D, H, W) triple, got {value!r}")
    return triple


def patch_grid(input_shape: Size3, patch_size: Size3) -> tuple[int, int, int]:
    """Number of patches along (D, H, W) once each dimension is zero-padded to a multiple of the
    patch size."""
    shape, patch = _triple(input_shape, "input_shape"), _triple(patch_size, "patch_size")
    return tuple(math.ceil(s / p) for s, p in zip(shape, patch, strict=True))


def overlap_grid(grid: Sequence[int]) -> tuple[int, int, int]:
    """Patches of the shifted grid: half a patch further in every dimension that has more than one
    patch (so one patch fewer there), unshifted where the main grid has a single patch."""
    return tuple(n - 1 if n > 1 else 1 for n in grid)


class PatchIndividualFilters3d(nn.Module):
    """Convolutions with weights shared only inside each patch of a fixed grid.

    Input: (B, C_in, *input_shape). Each spatial dimension is zero-padded at its end to a multiple
    of `patch_size`; the padded volume is cut into P = nD * nH * nW non-overlapping patches numbered
    row-major over (D, H, W). Patch p is convolved with `weight[p]` (P, C_out, C_in, k, k, k) and
    `bias[p]` (P, C_out); `stride` and `padding` act inside the patch (zero padding, never the
    neighbouring patch's voxels). Each patch gives an output of (d, h, w) voxels.

    Output: `reassemble=True` gives (B, C_out, nD*d, nH*h, nW*w), each patch's output in its place;
    `reassemble=False` gives (B, C_out, P, d, h, w), the form the authors' models flatten.

    `overlap=True` adds a second grid (the later version of the layer): patches shifted by half a
    patch (patch_size // 2) in every dimension that has more than one patch, with their own
    `overlap_weight` / `overlap_bias`. Its P2 patches are numbered row-major like the main grid.
    Where they go:
      - `reassemble=False`: after the main grid's patches on the patch axis: (B, C_out, P+P2, ...).
      - `reassemble=True`: as C_out more channels, (B, 2*C_out, nD*d, nH*h, nW*w); the shifted
        patch's output sits half a patch output (d // 2, ...) further along each shifted dimension
        than the main patch with the same index, and uncovered places are zero.

    Local convolution (a locally connected layer) is the case patch_size + 2*padding == kernel_size:
    one output voxel per patch, every patch its own filter.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        input_shape: Size3,
        patch_size: Size3,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 0,
        overlap: bool = False,
        reassemble: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.input_shape = _triple(input_shape, "input_shape")
        self.patch_size = _triple(patch_size, "patch_size")
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.overlap = overlap
        self.reassemble = reassemble
        self.grid = patch_grid(self.input_shape, self.patch_size)
        self.patch_output = tuple(
            (p + 2 * padding - kernel_size) // stride + 1 for p in self.patch_size
        )
        if min(self.patch_output) < 1:
            raise ValueError(
                f"kernel_size={kernel_size} does not fit a patch of {self.patch_size} "
                f"with padding={padding}"
            )
        self.num_patches = math.prod(self.grid)
        self.num_overlap_patches = math.prod(overlap_grid(self.grid)) if overlap else 0

        k = kernel_size
        self.weight = nn.Parameter(
            torch.empty(self.num_patches, out_channels, in_channels, k, k, k)
        )
        self.bias = nn.Parameter(torch.empty(self.num_patches, out_channels)) if bias else None
        if overlap:
            self.overlap_weight = nn.Parameter(
                torch.empty(self.num_overlap_patches, out_channels, in_channels, k, k, k)
            )
            self.overlap_bias = (
                nn.Parameter(torch.empty(self.num_overlap_patches, out_channels)) if bias else None
            )
        else:
            self.register_parameter("overlap_weight", None)
            self.register_parameter("overlap_bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Conv3d's default: uniform(+-1/sqrt(fan_in)) for weights and biases, per patch.
        bound = 1.0 / math.sqrt(self.in_channels * self.kernel_size**3)
        for param in (self.weight, self.bias, self.overlap_weight, self.overlap_bias):
            if param is not None:
                nn.init.uniform_(param, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, input_shape={self.input_shape}, "
            f"patch_size={self.patch_size}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, grid={self.grid}, overlap={self.overlap}, "
            f"reassemble={self.reassemble}"
        )

    def output_shape(self) -> tuple[int, ...]:
        """Shape of one sample's output (without the batch dimension)."""
        if self.reassemble:
            channels = self.out_channels * (2 if self.overlap else 1)
            return (channels, *(n * o for n, o in zip(self.grid, self.patch_output, strict=True)))
        patches = self.num_patches + self.num_overlap_patches
        return (self.out_channels, patches, *self.patch_output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or tuple(x.shape[1:]) != (self.in_channels, *self.input_shape):
            raise ValueError(
                f"PatchIndividualFilters3d expects input (B, {self.in_channels}, "
                f"{', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}"
            )
        batch = x.shape[0]
        padded = _pad_to_grid(x, self.grid, self.patch_size)
        # (B, C_in, nD*pd, nH*ph, nW*pw) -> (B, P*C_in, pd, ph, pw), patch-major channels
        patches = _split(padded, self.grid, self.patch_size)
        weight, bias = self.weight, self.bias
        if self.overlap:
            shifted = _shifted_region(padded, self.grid, self.patch_size)
            patches = torch.cat(
                [patches, _split(shifted, overlap_grid(self.grid), self.patch_size)], dim=1
            )
            weight = torch.cat([weight, self.overlap_weight])
            bias = None if bias is None else torch.cat([bias, self.overlap_bias])
        groups = weight.shape[0]
        out = F.conv3d(
            patches,
            weight.reshape(groups * self.out_channels, *weight.shape[2:]),
            None if bias is None else bias.reshape(-1),
            stride=self.stride,
            padding=self.padding,
            groups=groups,
        )
        # (B, (P+P2)*C_out, d, h, w) -> (B, C_out, P+P2, d, h, w)
        out = out.reshape(batch, groups, self.out_channels, *self.patch_output).transpose(1, 2)
        if not self.reassemble:
            return out.contiguous()
        main = _reassemble(out[:, :, : self.num_patches], self.grid)
        if not self.overlap:
            return main
        shifted_out = _reassemble(out[:, :, self.num_patches :], overlap_grid(self.grid))
        return torch.cat([main, _place_shifted(shifted_out, main.shape, self.grid)], dim=1)


def _pad_to_grid(x: torch.Tensor, grid: Sequence[int], patch: Sequence[int]) -> torch.Tensor:
    extra = [n * p - s for n, p, s in zip(grid, patch, x.shape[2:], strict=True)]
    if not any(extra):
        return x
    return F.pad(x, (0, extra[2], 0, extra[1], 0, extra[0]))


def _split(x: torch.Tensor, grid: Sequence[int], patch: Sequence[int]) -> torch.Tensor:
    batch, channels = x.shape[:2]
    (nd, nh, nw), (pd, ph, pw) = grid, patch
    blocks = x.reshape(batch, channels, nd, pd, nh, ph, nw, pw)
    # Channels-last patches: the single copy of the split lands directly in the layout that the
    # CPU (oneDNN) grouped convolution runs fastest on, forward and backward.
    # (B, C, nD, pd, nH, ph, nW, pw) -> memory (B, pd, ph, pw, nD, nH, nW, C)
    #   -> viewed as (B, P*C, pd, ph, pw)
    blocks = blocks.permute(0, 3, 5, 7, 2, 4, 6, 1).reshape(
        batch, pd, ph, pw, nd * nh * nw * channels
    )
    return blocks.permute(0, 4, 1, 2, 3)


def _reassemble(out: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    batch, channels, _, d, h, w = out.shape
    nd, nh, nw = grid
    # (B, C, P, d, h, w) -> (B, C, nD, d, nH, h, nW, w) -> (B, C, nD*d, nH*h, nW*w)
    blocks = out.reshape(batch, channels, nd, nh, nw, d, h, w).permute(0, 1, 2, 5, 3, 6, 4, 7)
    return blocks.reshape(batch, channels, nd * d, nh * h, nw * w)


def _shifted_region(x: torch.Tensor, grid: Sequence[int], patch: Sequence[int]) -> torch.Tensor:
    """The part of the padded volume that the shifted grid covers."""
    index = [slice(None), slice(None)]
    for n, p in zip(grid, patch, strict=True):
        index.append(slice(p // 2, p // 2 + (n - 1) * p) if n > 1 else slice(0, p))
    return x[tuple(index)]


def _place_shifted(shifted: torch.Tensor, shape: torch.Size, grid: Sequence[int]) -> torch.Tensor:
    """Zero-pad the reassembled shifted grid to the main grid's volume, half a patch output in."""
    pads = []
    for dim, n in zip(range(2, 5), grid, strict=True):
        per_patch = shape[dim] // n
        before = per_patch // 2 if n > 1 else 0
        pads.append((before, shape[dim] - shifted.shape[dim] - before))
    (d0, d1), (h0, h1), (w0, w1) = pads
    return F.pad(shifted, (w0, w1, h0, h1, d0, d1))


class PatchBatchNorm3d(nn.BatchNorm3d):
    """BatchNorm of a PIF layer's patch-wise output (B, C_out, P, d, h, w): one mean, variance,
    scale and shift per patch and channel, since channel c of one patch is another filter than
    channel c of the next. With the PIF convolution before it, it makes the paper's "single
    convolutional block (Conv-BatchNorm-ReLU) between split and reassemble" for every patch."""

    def __init__(self, channels: int, patches: int, **kwargs: object) -> None:
        super().__init__(channels * patches, **kwargs)  # type: ignore[arg-type]
        self.channels = channels
        self.patches = patches

    def extra_repr(self) -> str:
        return f"channels={self.channels}, patches={self.patches}, " + super().extra_repr()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 6 or tuple(x.shape[1:3]) != (self.channels, self.patches):
            raise ValueError(
                f"PatchBatchNorm3d expects (B, {self.channels}, {self.patches}, d, h, w), "
                f"got {tuple(x.shape)}"
            )
        # (B, C, P, d, h, w) -> (B, C*P, d, h, w): every patch's channel is a feature of its own
        return super().forward(x.flatten(1, 2)).view_as(x)

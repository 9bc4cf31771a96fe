"""Training-batch augmentation on the device: random left-right flips and integer translations
along the left-right axis with zero fill, drawn per sample, for a whole batch at once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pifexp.data.grid import left_right_axis
from pifexp.errors import ConfigError

SPATIAL_AXES = 3


@dataclass(frozen=True)
class AugmentSettings:
    flip_p: float  # probability of a left-right flip per sample
    shift_range: tuple[int, int]  # inclusive range of the integer shift (voxels, left-right axis)

    @property
    def active(self) -> bool:
        return self.flip_p > 0 or self.shift_range != (0, 0)


def augment_settings(augment_cfg: Mapping[str, Any], pif: bool) -> AugmentSettings:
    """task.augment for one arm: PIF models get flips only unless task.augment.pif_shift (a shift
    would move anatomy across the fixed patch borders)."""
    flip_p = float(augment_cfg["flip_p"])
    low, high = (int(value) for value in augment_cfg["shift"])
    if not 0 <= flip_p <= 1:
        raise ConfigError(f"task.augment.flip_p={flip_p} must lie in [0, 1]")
    if low > high:
        raise ConfigError(
            f"task.augment.shift=[{low}, {high}] must be [low, high] with low <= high"
        )
    if pif and not augment_cfg["pif_shift"]:
        low = high = 0
    return AugmentSettings(flip_p, (low, high))


def flip_axis_from_affine(affine: np.ndarray) -> int:
    """The volume axis to flip for a left-right flip (x in RAS), read from the grid's affine."""
    return left_right_axis(affine)


def augment_batch(
    x: torch.Tensor,
    flip_axis: int,
    flip_p: float,
    shift_range: tuple[int, int],
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Each sample flipped along `flip_axis` with probability flip_p, then shifted along it by a
    random integer in shift_range (inclusive), vacated voxels set to zero.

    x: (batch, ..., D, H, W), e.g. (B, 1, D, H, W); flip_axis counts the last three axes (0..2).
    One gather for the whole batch, on x's device; the per-sample draws come from `generator`
    (on whichever device it lives).
    """
    low, high = (int(value) for value in shift_range)
    if flip_p <= 0 and low == high == 0:
        return x
    dim = x.ndim - SPATIAL_AXES + flip_axis
    batch, length = x.shape[0], x.shape[dim]
    draw_on = generator.device if generator is not None else x.device
    flip = (torch.rand(batch, generator=generator, device=draw_on) < flip_p).to(x.device)
    shift = torch.randint(low, high + 1, (batch,), generator=generator, device=draw_on)
    shift = shift.to(x.device)
    # output voxel i takes voxel i - shift of the (possibly flipped) input
    source = torch.arange(length, device=x.device).unsqueeze(0) - shift.unsqueeze(1)
    inside = (source >= 0) & (source < length)
    source = torch.where(flip.unsqueeze(1), length - 1 - source, source).clamp(0, length - 1)
    view = [batch] + [1] * (x.ndim - 1)
    view[dim] = length
    moved = torch.take_along_dim(x, source.view(view), dim=dim)
    return moved.masked_fill(~inside.view(view), 0)

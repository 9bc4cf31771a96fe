import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pifexp.layers import PatchIndividualFilters3d


def naive_pif(layer: PatchIndividualFilters3d, x: torch.Tensor) -> torch.Tensor:
    """The layer written the obvious way: one conv3d per patch, in a Python loop."""
    grid, patch = layer.grid, layer.patch_size
    pad = [n * p - s for n, p, s in zip(grid, patch, x.shape[2:], strict=True)]
    padded = F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]))

    def run(grid, offsets, weight, bias):
        outputs = {}
        for index, cell in enumerate(itertools.product(*(range(n) for n in grid))):
            region = tuple(
                slice(o + c * p, o + (c + 1) * p)
                for o, c, p in zip(offsets, cell, patch, strict=True)
            )
            outputs[cell] = F.conv3d(
                padded[(slice(None), slice(None), *region)],
                weight[index],
                None if bias is None else bias[index],
                stride=layer.stride,
                padding=layer.padding,
            )
        return outputs

    main = run(grid, (0, 0, 0), layer.weight, layer.bias)
    shifted = {}
    if layer.overlap:
        shifted_grid = tuple(n - 1 if n > 1 else 1 for n in grid)
        offsets = tuple(p // 2 if n > 1 else 0 for n, p in zip(grid, patch, strict=True))
        shifted = run(shifted_grid, offsets, layer.overlap_weight, layer.overlap_bias)

    if not layer.reassemble:
        return torch.stack([*main.values(), *shifted.values()], dim=2)

    d, h, w = layer.patch_output
    batch, channels = x.shape[0], layer.out_channels
    out = x.new_zeros(
        batch, channels * (2 if layer.overlap else 1), grid[0] * d, grid[1] * h, grid[2] * w
    )
    for (i, j, k), value in main.items():
        out[:, :channels, i * d : (i + 1) * d, j * h : (j + 1) * h, k * w : (k + 1) * w] = value
    starts = [o // 2 if n > 1 else 0 for o, n in zip((d, h, w), grid, strict=True)]
    for (i, j, k), value in shifted.items():
        a, b, c = starts[0] + i * d, starts[1] + j * h, starts[2] + k * w
        out[:, channels:, a : a + d, b : b + h, c : c + w] = value
    return out


@st.composite
def pif_cases(draw):
    patch = tuple(draw(st.integers(1, 4)) for _ in range(3))
    padding = draw(st.sampled_from([0, 1]))
    kernel = draw(st.sampled_from([1, 2, 3]))
    if any(p + 2 * padding < kernel for p in patch):
        kernel = 1
    shape = tuple(draw(st.integers(1, 9)) for _ in range(3))
    return {
        "in_channels": draw(st.integers(1, 3)),
        "out_channels": draw(st.integers(1, 3)),
        "input_shape": shape,
        "patch_size": patch,
        "kernel_size": kernel,
        "stride": draw(st.sampled_from([1, 2])),
        "padding": padding,
        "overlap": draw(st.booleans()),
        "reassemble": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "batch": draw(st.integers(1, 3)),
    }


CASE = dict(
    in_channels=2,
    out_channels=2,
    input_shape=(7, 5, 9),
    patch_size=(3, 5, 4),
    kernel_size=3,
    stride=1,
    padding=0,
    overlap=True,
    reassemble=True,
    bias=True,
    batch=2,
)


@settings(max_examples=60, deadline=None)
@given(case=pif_cases(), seed=st.integers(0, 2**16))
# non-divisible sizes, a single-patch dimension and the shifted grid, in both output forms
@example(case=CASE, seed=0)
@example(case={**CASE, "reassemble": False}, seed=1)
# stride 2 with padding 1, no bias
@example(case={**CASE, "overlap": False, "stride": 2, "padding": 1, "bias": False}, seed=2)
def test_matches_per_patch_loop_values_and_gradients(case, seed):
    torch.manual_seed(seed)
    case = dict(case)
    batch = case.pop("batch")
    layer = PatchIndividualFilters3d(**case).double()
    x = torch.randn(batch, case["in_channels"], *case["input_shape"], dtype=torch.float64)

    x_fast = x.clone().requires_grad_()
    fast = layer(x_fast)
    fast_grads = torch.autograd.grad(
        (fast * torch.linspace(-1, 1, fast.numel()).view_as(fast).double()).sum(),
        [x_fast, *layer.parameters()],
    )

    x_slow = x.clone().requires_grad_()
    slow = naive_pif(layer, x_slow)
    assert fast.shape == slow.shape == (batch, *layer.output_shape())
    torch.testing.assert_close(fast, slow)
    slow_grads = torch.autograd.grad(
        (slow * torch.linspace(-1, 1, slow.numel()).view_as(slow).double()).sum(),
        [x_slow, *layer.parameters()],
    )
    for fast_grad, slow_grad in zip(fast_grads, slow_grads, strict=True):
        torch.testing.assert_close(fast_grad, slow_grad)


@pytest.mark.parametrize("overlap", [False, True])
@pytest.mark.parametrize("reassemble", [False, True])
def test_gradcheck(overlap, reassemble):
    torch.manual_seed(0)
    layer = PatchIndividualFilters3d(
        2,
        2,
        (5, 4, 3),
        patch_size=(2, 2, 3),
        kernel_size=2,
        padding=1,
        stride=2,
        overlap=overlap,
        reassemble=reassemble,
    ).double()
    x = torch.randn(2, 2, 5, 4, 3, dtype=torch.float64, requires_grad=True)
    params = tuple(layer.parameters())

    def as_function(x, *values):
        return torch.func.functional_call(
            layer, dict(zip(dict(layer.named_parameters()), values, strict=True)), (x,)
        )

    assert torch.autograd.gradcheck(as_function, (x, *params))


@pytest.mark.parametrize("padding", [0, 1])
def test_single_patch_covering_the_volume_equals_conv3d(padding):
    torch.manual_seed(1)
    layer = PatchIndividualFilters3d(3, 4, (6, 5, 7), patch_size=(6, 5, 7), padding=padding)
    x = torch.randn(2, 3, 6, 5, 7)
    expected = F.conv3d(x, layer.weight[0], layer.bias[0], padding=padding)
    torch.testing.assert_close(layer(x), expected)


def test_local_convolution_has_one_filter_per_voxel():
    # patch 1, kernel 1: a locally connected layer, every voxel its own C_in -> C_out map
    torch.manual_seed(2)
    layer = PatchIndividualFilters3d(3, 2, (2, 3, 4), patch_size=1, kernel_size=1)
    x = torch.randn(5, 3, 2, 3, 4)
    weight = layer.weight.view(2, 3, 4, 2, 3)  # (D, H, W, C_out, C_in)
    expected = torch.einsum("dhwoc,bcdhw->bodhw", weight, x) + layer.bias.view(2, 3, 4, 2).permute(
        3, 0, 1, 2
    )
    torch.testing.assert_close(layer(x), expected)


def test_local_convolution_when_padded_patch_equals_kernel():
    # patch 3 + 2 * padding 1 == kernel 5: the kernel does not slide, one output per patch
    torch.manual_seed(3)
    layer = PatchIndividualFilters3d(
        2, 3, (6, 3, 3), patch_size=3, kernel_size=5, padding=1, reassemble=False
    )
    x = torch.randn(4, 2, 6, 3, 3)
    out = layer(x)
    assert out.shape == (4, 3, 2, 1, 1, 1)
    patches = [F.pad(x[:, :, 3 * i : 3 * i + 3], (1, 1, 1, 1, 1, 1)) for i in range(2)]
    expected = torch.stack(
        [
            torch.einsum("ocdhw,bcdhw->bo", layer.weight[i], patches[i]) + layer.bias[i]
            for i in range(2)
        ],
        dim=2,
    )
    torch.testing.assert_close(out.flatten(2), expected)


def test_patches_are_independent():
    # a change inside one patch changes only that patch's output
    torch.manual_seed(4)
    layer = PatchIndividualFilters3d(1, 1, (4, 4, 4), patch_size=2, kernel_size=1)
    x = torch.randn(1, 1, 4, 4, 4)
    y = x.clone()
    y[..., 2:4, 0:2, 2:4] += 1.0
    changed = (layer(x) != layer(y)).squeeze()
    assert changed[2:4, 0:2, 2:4].all()
    assert changed.sum() == 8


def test_parameter_shapes_and_grid():
    layer = PatchIndividualFilters3d(
        64, 3, (10, 13, 10), patch_size=5, overlap=True, reassemble=False
    )
    assert layer.grid == (2, 3, 2)
    assert layer.weight.shape == (12, 3, 64, 3, 3, 3)
    assert layer.bias.shape == (12, 3)
    assert layer.overlap_weight.shape == (2, 3, 64, 3, 3, 3)  # shifted grid 1x2x1
    assert layer.output_shape() == (3, 14, 3, 3, 3)
    assert math.prod(layer.output_shape()) == 1134  # the authors' later ADNI PIF flattened size


def test_wrong_input_shape_is_a_clear_error():
    layer = PatchIndividualFilters3d(2, 2, (4, 4, 4), patch_size=2, kernel_size=1)
    with pytest.raises(ValueError, match=r"expects input \(B, 2, 4, 4, 4\), got \(1, 2, 4, 4, 5\)"):
        layer(torch.zeros(1, 2, 4, 4, 5))
    with pytest.raises(ValueError, match="expects input"):
        layer(torch.zeros(2, 4, 4, 4))


def test_kernel_larger_than_padded_patch_is_rejected():
    with pytest.raises(ValueError, match="does not fit a patch"):
        PatchIndividualFilters3d(1, 1, (4, 4, 4), patch_size=2, kernel_size=3)

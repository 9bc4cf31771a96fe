"""Forward+backward time of the PIF layer against a plain Conv3d and a per-patch loop.

Prints JSON. The plain convolution (same channels and kernel, on the input padded to the patch grid)
is the yardstick: a PIF layer does fewer multiply-adds than it. Runs on the CPU and, when present,
on CUDA; the implementations are timed interleaved after a warm-up, and medians are reported.

    python scripts/bench_pif.py [--repeats 30] [--threads 2] [--device cpu|cuda|all]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from pifexp.layers import PatchIndividualFilters3d

CONFIGS = {
    # the paper's PIF layers (protocol.md) and a larger, reassembled one
    "adni": dict(batch=12, in_channels=64, input_shape=(10, 13, 10), patch_size=5, out_channels=3,
                 reassemble=False),
    "ukb": dict(batch=4, in_channels=64, input_shape=(15, 19, 15), patch_size=5, out_channels=8,
                reassemble=False),
    "large": dict(batch=8, in_channels=32, input_shape=(24, 28, 24), patch_size=8, out_channels=16,
                  reassemble=True),
}  # fmt: skip
KERNEL_SIZE = 3


def per_patch_loop(layer: PatchIndividualFilters3d, x: torch.Tensor) -> torch.Tensor:
    """The straightforward implementation: one conv3d per patch."""
    padded = F.pad(x, _end_padding(layer, x))
    outputs = []
    for index, cell in enumerate(itertools.product(*(range(n) for n in layer.grid))):
        region = tuple(
            slice(c * p, (c + 1) * p) for c, p in zip(cell, layer.patch_size, strict=True)
        )
        outputs.append(F.conv3d(padded[(..., *region)], layer.weight[index], layer.bias[index]))
    return torch.stack(outputs, dim=2)


def _end_padding(layer: PatchIndividualFilters3d, x: torch.Tensor) -> tuple[int, ...]:
    extra = [n * p - s for n, p, s in zip(layer.grid, layer.patch_size, x.shape[2:], strict=True)]
    return (0, extra[2], 0, extra[1], 0, extra[0])


def _timer(fn: Callable[[], torch.Tensor], device: torch.device) -> Callable[[], float]:
    def run() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn().float().square().mean().backward()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return run


def bench_config(name: str, cfg: dict, device: torch.device, repeats: int, warmup: int) -> dict:
    torch.manual_seed(0)
    layer = PatchIndividualFilters3d(
        cfg["in_channels"], cfg["out_channels"], cfg["input_shape"], cfg["patch_size"],
        kernel_size=KERNEL_SIZE, reassemble=cfg["reassemble"],
    ).to(device)  # fmt: skip
    conv = torch.nn.Conv3d(cfg["in_channels"], cfg["out_channels"], KERNEL_SIZE).to(device)
    conv_channels_last = torch.nn.Conv3d(cfg["in_channels"], cfg["out_channels"], KERNEL_SIZE).to(
        device, memory_format=torch.channels_last_3d
    )
    x = torch.randn(cfg["batch"], cfg["in_channels"], *cfg["input_shape"], device=device)
    x.requires_grad_()
    padding = _end_padding(layer, x)
    candidates = {
        "pif": _timer(lambda: layer(x), device),
        "conv": _timer(lambda: conv(F.pad(x, padding)), device),
        "conv_channels_last": _timer(
            lambda: conv_channels_last(
                F.pad(x, padding).contiguous(memory_format=torch.channels_last_3d)
            ),
            device,
        ),
        "per_patch_loop": _timer(lambda: per_patch_loop(layer, x), device),
    }
    for run in candidates.values():
        for _ in range(warmup):
            run()
    times: dict[str, list[float]] = {key: [] for key in candidates}
    for _ in range(repeats):  # interleaved, so drifts in clock or load hit every candidate alike
        for key, run in candidates.items():
            times[key].append(run())
    median_ms = {key: statistics.median(values) * 1e3 for key, values in times.items()}
    best_conv = min(median_ms["conv"], median_ms["conv_channels_last"])
    padded_shape = [n * p for n, p in zip(layer.grid, layer.patch_size, strict=True)]
    conv_outputs = math.prod(s - KERNEL_SIZE + 1 for s in padded_shape)
    pif_outputs = layer.num_patches * math.prod(layer.patch_output)
    return {
        "config": name,
        "device": str(device),
        **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
        "kernel_size": KERNEL_SIZE,
        "patches": layer.num_patches,
        "multiply_adds_pif_over_conv": round(pif_outputs / conv_outputs, 3),
        "median_ms": {key: round(value, 3) for key, value in median_ms.items()},
        "pif_over_conv": round(median_ms["pif"] / median_ms["conv"], 3),
        "pif_over_best_conv": round(median_ms["pif"] / best_conv, 3),
        "loop_over_pif": round(median_ms["per_patch_loop"] / median_ms["pif"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] if args.device in ("cpu", "all") else []
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    if args.device == "cuda" and not devices:
        parser.error("--device cuda: no CUDA device is available")
    results = [
        bench_config(name, CONFIGS[name], device, args.repeats, args.warmup)
        for device in devices
        for name in args.configs
    ]
    report = {
        "benchmark": "pif_layer_forward_backward",
        "torch": torch.__version__,
        "cpu_threads": args.threads,
        "machine": platform.machine(),
        "cuda_device": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "repeats": args.repeats,
        "results": results,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Per-volume read time from the cache vs decoding the .nii.gz and resampling it; prints JSON.

    python scripts/bench_data.py [--task adni] [--volumes 4] [--manifest FILE] [--passes 3]

Without --manifest it writes a few 1 mm MNI152 volumes (nilearn's T1 template, scaled per volume)
as .nii.gz into a temporary folder. The task's preprocessing (configs/task/<task>.yaml) is used.
Cache reads are timed after the build, so the page cache is warm, as in every epoch but the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from nilearn.datasets import load_mni152_template

from pifexp.config_dir import config_dir
from pifexp.data.batches import CohortBatches
from pifexp.data.cache import build_cache, open_cache
from pifexp.data.grid import Grid, reference_grid
from pifexp.data.manifest import describe_row, read_manifest
from pifexp.data.nifti import load_volume, read_header
from pifexp.data.parallel import worker_count
from pifexp.data.preprocess import make_plan, preprocess_volume
from pifexp.experiments.specs import preprocess_spec


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="adni", help="task config (its preprocessing)")
    parser.add_argument("--manifest", help="a cohort's manifest; default: synthetic volumes")
    parser.add_argument("--volumes", type=int, default=4, help="synthetic volumes to write")
    parser.add_argument("--passes", type=int, default=3, help="passes over the cache")
    parser.add_argument("--batch-size", type=int, default=4, help="batch size for batch reads")
    parser.add_argument("--workers", type=int, default=None, help="cache build workers (all)")
    return parser.parse_args()


def write_volumes(folder: Path, count: int) -> Path:
    """count 1 mm MNI152 T1 volumes (intensity scaled per volume) and their manifest."""
    template = load_mni152_template(resolution=1)
    data = template.get_fdata(dtype=np.float32)
    rows = []
    for index in range(count):
        path = folder / f"sub-{index:03d}.nii.gz"
        scale = np.float32(1.0 + index / count)
        nib.save(nib.Nifti1Image(data * scale, template.affine), path)
        rows.append({"subject_id": f"sub-{index:03d}", "path": path.name, "label": index % 2})
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def median_ms(function: Callable[[int], object], positions: list[int]) -> float:
    times = []
    for position in positions:
        start = time.perf_counter()
        function(position)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    args = arguments()
    with tempfile.TemporaryDirectory(prefix="pifexp-bench-") as scratch:
        folder = Path(scratch)
        manifest = Path(args.manifest) if args.manifest else write_volumes(folder, args.volumes)
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(
                config_name="data_check",
                overrides=[
                    f"task={args.task}",
                    f"data.manifest={manifest.resolve()}",
                    f"data.cache_dir={folder / 'cache'}",
                ],
            )
        manifest_df = read_manifest(cfg.data.manifest, cfg.task.classes)
        settings = preprocess_spec(cfg)
        names = [describe_row(manifest_df, i) for i in range(len(manifest_df))]
        paths = manifest_df["path"].tolist()
        grids: list[Grid] = [read_header(p, n).grid for p, n in zip(paths, names, strict=True)]
        plan = make_plan(
            settings,
            reference_grid(
                grids,
                names,
                settings.resample_to,
                settings.affine_atol_mm,
                settings.mni_resolution,
            ),
        )
        positions = list(range(len(paths)))
        decoded = {}

        def decode(position: int) -> None:
            decoded[position] = load_volume(paths[position], names[position])

        def resample(position: int) -> None:
            data, affine = decoded[position]
            preprocess_volume(data, affine, plan, names[position])

        decode_ms = median_ms(decode, positions)
        resample_ms = median_ms(resample, positions)
        decoded.clear()

        workers = worker_count(args.workers)
        start = time.perf_counter()
        location = build_cache(manifest_df, settings, cfg.data.cache_dir, workers, progress=False)
        build_s = time.perf_counter() - start
        cohort = open_cache(location)
        read_ms = median_ms(
            lambda position: np.array(cohort.volumes[position]), positions * args.passes
        )
        served = CohortBatches(
            cohort.volumes,
            cohort.labels,
            {"val": np.arange(len(paths))},
            "cpu",
            flip_axis=cohort.flip_axis,
            on_device=False,
            memory_fraction=float(cfg.data.device_memory_fraction),
        )
        start = time.perf_counter()
        for _ in range(args.passes):
            for _x, _y in served.batches("val", args.batch_size):
                pass
        batch_ms = 1000 * (time.perf_counter() - start) / (args.passes * len(paths))

        source = grids[0]
        print(
            json.dumps(
                {
                    "task": args.task,
                    "volumes": len(paths),
                    "source_grid": source.describe(),
                    "source_file_mb": round(Path(paths[0]).stat().st_size / 2**20, 1),
                    "target_grid": plan.grid.describe(),
                    "interpolation": plan.interpolation,
                    "stored_dtype": plan.dtype,
                    "nifti_decode_ms": round(decode_ms, 2),
                    "resample_ms": round(resample_ms, 2),
                    "nifti_total_ms": round(decode_ms + resample_ms, 2),
                    "cache_read_ms": round(read_ms, 3),
                    "cache_batch_ms_per_volume": round(batch_ms, 3),
                    "speedup": round((decode_ms + resample_ms) / read_ms, 1),
                    "speedup_batches": round((decode_ms + resample_ms) / batch_ms, 1),
                    "cache_build_s": round(build_s, 2),
                    "cache_build_workers": workers,
                    "torch_threads": torch.get_num_threads(),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()

"""Wall time of a whole Table 1 batch from scratch (cohort generation and caching included); JSON.

    python scripts/bench_table1.py [--out DIR] [Hydra overrides of pifexp table1]

Runs `pifexp table1 profile=quick` (unless a profile is given) into DIR with its own data cache
under DIR, so nothing cached earlier is reused (its output goes to DIR/bench.log), then reads the
table it wrote (table1.csv) and each cell's results.csv. Prints JSON: the command, its exit code,
total wall seconds, the epochs trained in all and per second of training, the machine's CPU count
and torch threads, and per cell its status, seeds, seconds spent training, epochs trained and
epochs per second, seeds that the epoch cap (not early stopping) ended, the fewest distinct
training subjects of a seed, and mean balanced accuracy and early-stopping epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="output folder (default: a new temporary one)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer.seeds=3")
    return parser.parse_args()


def cell_times(out_dir: Path) -> dict[str, dict[str, object]]:
    """Per cell, from the batch's own table1.csv (empty when the batch wrote none)."""
    table_path = out_dir / "table1.csv"
    if not table_path.exists():
        return {}
    columns = ["cell", "status", "seeds", "train_seconds", "stopped_by_cap", "train_subjects_min",
               "balanced_accuracy_mean", "early_stopping_epoch_mean"]
    table = pd.read_csv(table_path)[columns].set_index("cell")
    table["epochs_trained"] = [
        int(pd.read_csv(out_dir / "cells" / cell / "results.csv")["epochs_trained"].sum())
        for cell in table.index
    ]
    table["epochs_per_second"] = table["epochs_trained"] / table["train_seconds"]
    return json.loads(table.round(4).to_json(orient="index"))


def main() -> None:
    args = arguments()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="pifexp-table1-"))
    overrides = list(args.overrides)
    if not any(override.startswith("profile=") for override in overrides):
        overrides.insert(0, "profile=quick")
    command = [sys.executable, "-m", "pifexp.cli", "table1", *overrides, f"out_dir={out_dir}",
               f"data.cache_dir={out_dir / 'cache'}", "trainer.progress=false",
               "data.progress=false"]
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(out_dir / "bench.log", "w") as log:  # keeps stdout for the JSON alone
        completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=False)
    wall_seconds = time.perf_counter() - start
    cells = cell_times(out_dir)
    epochs = sum(int(cell["epochs_trained"]) for cell in cells.values())
    training = sum(float(cell["train_seconds"]) for cell in cells.values())
    print(json.dumps({
        "command": " ".join(command[2:]),
        "exit_code": completed.returncode,
        "wall_seconds": round(wall_seconds, 1),
        "epochs_trained": epochs,
        "epochs_per_second": round(epochs / training, 3) if training else None,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
        "out_dir": str(out_dir),
        "cells": cells,
    }, indent=2))


if __name__ == "__main__":
    main()

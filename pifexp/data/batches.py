"""(x, y) batches of a cohort's partitions, served from its cache on a device.

With data.on_device the partitions' volumes are copied to the device once (as stored, e.g.
float16) and each batch is an index into that tensor; otherwise each batch is read from the
memory-mapped cache (sequential rows within a batch) and copied over. Training batches are
shuffled and augmented on the device; validation and test batches never are.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

from pifexp.data.augment import AugmentSettings, augment_batch
from pifexp.data.cache import CachedCohort
from pifexp.data.splits import partition_rows
from pifexp.errors import ConfigError, PifexpError

TRAIN = "train"
ON_DEVICE_CHOICES = ("auto", True, False)


def resolve_on_device(
    on_device: str | bool, nbytes: int, device: torch.device, memory_fraction: float
) -> bool:
    """data.on_device: true, false, or auto (a CUDA device whose free memory times
    data.device_memory_fraction holds the volumes; on a CPU the memory map is read directly)."""
    if on_device not in ON_DEVICE_CHOICES:
        raise ConfigError(f"data.on_device={on_device!r} must be auto, true or false")
    if on_device != "auto":
        return bool(on_device)
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes <= memory_fraction * free


class CohortBatches:
    """Serves the partitions of one cohort as (x, y) batches: x (B, 1, D, H, W), y (B,) float."""

    def __init__(
        self,
        volumes: np.ndarray,
        labels: np.ndarray,
        partitions: Mapping[str, np.ndarray],
        device: torch.device | str,
        *,
        flip_axis: int,
        augment: AugmentSettings | None = None,
        on_device: str | bool,
        memory_fraction: float,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.device = torch.device(device)
        self.partitions = {
            name: np.asarray(rows, dtype=np.int64) for name, rows in partitions.items()
        }
        self.flip_axis = flip_axis
        self.augment = augment
        self.dtype = dtype
        self._volumes = volumes
        self._labels = torch.as_tensor(np.array(labels), dtype=dtype, device=self.device)
        # rows of every partition, sorted: the device copy holds these in this order
        self._rows = np.unique(np.concatenate([*self.partitions.values(), np.empty(0, np.int64)]))
        nbytes = len(self._rows) * int(np.prod(volumes.shape[1:])) * volumes.dtype.itemsize
        self.on_device = resolve_on_device(on_device, nbytes, self.device, memory_fraction)
        self._resident: torch.Tensor | None = None
        if self.on_device:
            self._resident = torch.empty(
                (len(self._rows), *volumes.shape[1:]),
                dtype=torch.from_numpy(np.empty(0, dtype=volumes.dtype)).dtype,
                device=self.device,
            )
            # one volume at a time: the cohort never needs to fit in host memory as a whole
            for position, row in enumerate(self._rows):
                self._resident[position] = torch.from_numpy(np.array(volumes[row]))

    def size(self, partition: str) -> int:
        return len(self._partition(partition))

    def num_batches(self, partition: str, batch_size: int, drop_last: bool = False) -> int:
        count = self.size(partition)
        return count // batch_size if drop_last else -(-count // batch_size)

    def batches(
        self,
        partition: str,
        batch_size: int,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass over a partition. 'train' is shuffled and augmented with `generator` (seed it
        for a reproducible run); other partitions come in row order, never augmented."""
        if batch_size < 1:
            raise ConfigError(f"batch size {batch_size} must be at least 1")
        rows = self._partition(partition)
        training = partition == TRAIN
        if training:
            where = generator.device if generator is not None else torch.device("cpu")
            order = torch.randperm(len(rows), generator=generator, device=where).cpu().numpy()
            rows = rows[order]
        stop = len(rows) - len(rows) % batch_size if drop_last else len(rows)
        for start in range(0, stop, batch_size):
            # sorted within a batch: sequential reads from the memory map
            batch_rows = np.sort(rows[start : start + batch_size])
            x = self._volumes_of(batch_rows).to(self.dtype).unsqueeze(1)
            y = self._labels[torch.as_tensor(batch_rows, device=self.device)]
            if training and self.augment is not None and self.augment.active:
                x = augment_batch(
                    x, self.flip_axis, self.augment.flip_p, self.augment.shift_range, generator
                )
            yield x, y

    def _partition(self, partition: str) -> np.ndarray:
        if partition not in self.partitions:
            raise PifexpError(f"no partition {partition!r} (have {', '.join(self.partitions)})")
        return self.partitions[partition]

    def _volumes_of(self, rows: np.ndarray) -> torch.Tensor:
        if self._resident is not None:
            positions = torch.as_tensor(np.searchsorted(self._rows, rows), device=self.device)
            return self._resident[positions]
        host = torch.from_numpy(np.ascontiguousarray(self._volumes[rows]))
        if self.device.type == "cuda":
            return host.pin_memory().to(self.device, non_blocking=True)
        return host.to(self.device)


def cohort_batches(
    cohort: CachedCohort,
    split: Mapping[str, Sequence[str]],
    device: torch.device | str,
    *,
    augment: AugmentSettings | None = None,
    on_device: str | bool,
    memory_fraction: float,
) -> CohortBatches:
    """Batches of a cached cohort for a split (subject ids per partition, see split_subjects)."""
    return CohortBatches(
        cohort.volumes,
        cohort.labels,
        partition_rows(cohort.index, split),
        device,
        flip_axis=cohort.flip_axis,
        augment=augment,
        on_device=on_device,
        memory_fraction=memory_fraction,
    )

"""Per-image work over all cores (concurrent.futures), with a progress bar (tqdm)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from tqdm.auto import tqdm

from pifexp.errors import ConfigError, PifexpError

Item = TypeVar("Item")
Result = TypeVar("Result")

# Workers are forked where the platform can (as torch's DataLoader does): they start at once, need
# no `if __name__ == "__main__"` guard in the caller's script and touch neither torch nor CUDA.
START_METHOD = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
# items queued per worker: enough to keep it busy, few enough that an error stops work quickly
IN_FLIGHT_PER_WORKER = 2


def available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def worker_count(setting: int | None) -> int:
    """data.workers: null means every core this process may use."""
    if setting is None:
        return available_cores()
    if int(setting) < 1:
        raise ConfigError(f"data.workers={setting} must be at least 1 (or null: all cores)")
    return int(setting)


def parallel_map(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    description: str,
    progress: bool,
    initializer: Callable[..., None] | None = None,
    initargs: Iterable[Any] = (),
) -> Iterator[Result]:
    """function(item) for every item, in the order they finish; the first error stops the rest.

    One worker runs in this process (no pool). Few items are queued per worker, so an error or
    an interrupt leaves little work running.
    """
    # on a terminal only: bars in a redirected log are noise
    bar = tqdm(total=len(items), desc=description, unit="image", disable=None if progress else True)
    with bar:
        if workers == 1 or len(items) <= 1:
            if initializer is not None:
                initializer(*initargs)
            for item in items:
                yield function(item)
                bar.update()
            return
        context = multiprocessing.get_context(START_METHOD)
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(items)),
            mp_context=context,
            initializer=initializer,
            initargs=tuple(initargs),
        )
        try:
            pending = iter(items)
            running: set[Future] = set()
            for item in pending:
                running.add(pool.submit(function, item))
                if len(running) >= IN_FLIGHT_PER_WORKER * workers:
                    break
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        raise PifexpError(
                            f"a {description} worker process died (out of memory?); "
                            f"try fewer workers (data.workers)"
                        ) from None
                    yield result
                    bar.update()
                    following = next(pending, None)
                    if following is not None:
                        running.add(pool.submit(function, following))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

"""The cache on a full disk and a damaged cache: a one-line error, nothing half-built left, no
silent use of a truncated index."""

from __future__ import annotations

import errno
import os

import pytest
from test_check import assert_rejected

from pifexp.data.cache import INDEX_FILE, unfinished_builds


def test_a_full_disk_is_found_before_any_worker_writes(make_cohort, check_cli, tmp_path,
                                                        monkeypatch):  # fmt: skip
    if not hasattr(os, "posix_fallocate"):
        pytest.skip("this platform reserves no file space ahead")

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    line = assert_rejected(check_cli(make_cohort()), "no room for the cache", "data.cache_dir")
    assert "No space left on device" in line
    assert unfinished_builds(tmp_path / "cache") == []  # the hidden build folder is gone


def test_a_truncated_cache_index_is_not_used(make_cohort, check_cli, tmp_path):
    manifest = make_cohort()
    code, _, err = check_cli(manifest)
    assert code == 0, err
    (index,) = (tmp_path / "cache").glob(f"*/{INDEX_FILE}")
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines[:-3]) + "\n")  # three images fewer than volumes
    assert_rejected(check_cli(manifest), str(index.parent), "damaged", "delete it to rebuild")

"""pifexp data check: read and validate a cohort, report it and build its cache."""

from __future__ import annotations

import sys

from omegaconf import DictConfig

from pifexp.data.check import CohortReport, format_report
from pifexp.data.cohort import check_and_cache
from pifexp.experiments.specs import data_spec, manifest_path


def check_command(cfg: DictConfig) -> CohortReport:
    manifest = manifest_path(cfg, "pifexp data check")
    report = check_and_cache(manifest, data_spec(cfg), build=bool(cfg.build_cache))
    for warning in report.warnings:
        print(f"pifexp: warning: {warning}", file=sys.stderr)
    print(format_report(report))
    return report

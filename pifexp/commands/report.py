"""pifexp report DIR...: Table 1's tables and figures again, from run folders only; or a study's,
from its folder."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from pifexp.errors import PifexpError
from pifexp.experiments.report import Report, describe_files, write_report
from pifexp.experiments.report.study_writing import StudyReport
from pifexp.experiments.specs import plain
from pifexp.experiments.study import is_study_folder, report_study


def report_command(cfg: DictConfig) -> Report | StudyReport:
    if OmegaConf.is_missing(cfg, "dirs"):
        raise PifexpError("dirs is required: pifexp report dirs=DIR or dirs=[DIR1,DIR2]")
    setting = cfg.dirs
    dirs = [str(d) for d in setting] if isinstance(setting, ListConfig) else [str(setting)]
    if not dirs:
        raise PifexpError("dirs is empty: name at least one run folder")
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(dirs[0])
    studies = [d for d in dirs if is_study_folder(d)]
    if studies and len(dirs) > 1:
        raise PifexpError(f"{studies[0]} is a study's folder: report it on its own")
    if studies:
        report = report_study(dirs[0], plain(cfg, "reporting"), cfg.seeds, out_dir)
    else:
        report = write_report(dirs, out_dir, plain(cfg, "paper"), plain(cfg, "reporting"),
                              cfg.seeds)  # fmt: skip
    print(report.markdown)
    print(f"written: {describe_files(report.files)}")
    return report

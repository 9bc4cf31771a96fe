"""pifexp report DIR...: Table 1's tables and figures again, from run folders only."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from pifexp.errors import PifexpError
from pifexp.experiments.report import Report, describe_files, write_report
from pifexp.experiments.specs import plain


def report_command(cfg: DictConfig) -> Report:
    if OmegaConf.is_missing(cfg, "dirs"):
        raise PifexpError("dirs is required: pifexp report dirs=DIR or dirs=[DIR1,DIR2]")
    setting = cfg.dirs
    dirs = [str(d) for d in setting] if isinstance(setting, ListConfig) else [str(setting)]
    if not dirs:
        raise PifexpError("dirs is empty: name at least one run folder")
    out_dir = Path(cfg.out_dir) if cfg.out_dir else Path(dirs[0])
    report = write_report(dirs, out_dir, plain(cfg, "paper"), plain(cfg, "reporting"), cfg.seeds)
    print(report.markdown)
    print(f"written: {describe_files(report.files)}")
    return report

"""The face of a batch of cells (pifexp table1, pifexp study): a Hydra callback that checks the
batch before its jobs start, and when they are done writes and prints its tables and exits
non-zero if a cell did not finish."""

from __future__ import annotations

import sys
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from pifexp.commands.failures import failure_message
from pifexp.commands.overrides import override_keys
from pifexp.experiments.report import describe_files


class BatchCallback(Callback):
    """Hydra turns an exception in a callback into a warning, so failures end the command here
    with one line and SystemExit. Subclasses say how the batch starts and what it writes."""

    command = "table1"

    def start(self, config: DictConfig, command_line_keys: set[str]) -> None:
        raise NotImplementedError

    def tables(self, config: DictConfig) -> Any:
        """The written report: .markdown, .files, .table and .unfinished (cells not done)."""
        raise NotImplementedError

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        keys = override_keys(OmegaConf.to_container(config.hydra.overrides.task))
        try:
            self.start(config, keys)
        except Exception as error:
            self._fail(error)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            report = self.tables(config)
        except Exception as error:
            self._fail(error)
        print(report.markdown)
        print(f"written: {describe_files(report.files)}")
        unfinished = report.unfinished
        if len(unfinished):
            listed = "; ".join(
                f"{row.cell}: {row.status}" for row in unfinished.itertuples(index=False)
            )
            print(
                f"pifexp: error: {len(unfinished)} of {len(report.table)} cells did not finish "
                f"({listed})",
                file=sys.stderr,
            )
            raise SystemExit(1)

    def _fail(self, error: Exception) -> None:
        message, code = failure_message(error, self.command)
        print(message, file=sys.stderr)
        raise SystemExit(code)

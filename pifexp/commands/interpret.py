"""pifexp interpret DIR...: attribution maps of finished runs, their scores and figures."""

from __future__ import annotations

from omegaconf import DictConfig

from pifexp.experiments.apply.interpret import Interpretation, interpret
from pifexp.experiments.apply.specs import interpret_spec


def interpret_command(cfg: DictConfig) -> Interpretation:
    interpretation = interpret(interpret_spec(cfg))
    print(interpretation.markdown)
    print(f"written: {interpretation.out_dir} ({len(interpretation.files)} tables and figures)")
    return interpretation

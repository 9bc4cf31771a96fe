"""Networks built from a network spec: the paper's baselines and PIF networks, and their summary.

Owns: NetworkSpec (models/spec.py, also the format of network.json), build_model, summarize.
May import: torch, pandas, pifexp.layers, pifexp.errors; never a Hydra config.
"""

from pifexp.models.network import build_model
from pifexp.models.spec import BlockSpec, NetworkSpec, PifSpec, network_spec

__all__ = ["BlockSpec", "NetworkSpec", "PifSpec", "build_model", "network_spec"]

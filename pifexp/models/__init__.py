"""Baseline and PIF networks built from config."""

from pifexp.models.network import build_model

__all__ = ["build_model"]

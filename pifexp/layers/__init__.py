"""The PIF layer."""

from pifexp.layers.pif import PatchIndividualFilters3d, overlap_grid, patch_grid

__all__ = ["PatchIndividualFilters3d", "overlap_grid", "patch_grid"]

"""The PIF layer: convolutions whose weights are shared only inside each patch of a fixed grid.

Owns: PatchIndividualFilters3d and its patch grids.
May import: torch only.
"""

from pifexp.layers.pif import PatchIndividualFilters3d, overlap_grid, patch_grid

__all__ = ["PatchIndividualFilters3d", "overlap_grid", "patch_grid"]

"""The PIF layer: convolutions whose weights are shared only inside each patch of a fixed grid.

Owns: PatchIndividualFilters3d, its patch grids and its per-patch BatchNorm.
May import: torch only.
"""

from pifexp.layers.pif import (
    PatchBatchNorm3d,
    PatchIndividualFilters3d,
    overlap_grid,
    patch_grid,
)

__all__ = ["PatchBatchNorm3d", "PatchIndividualFilters3d", "overlap_grid", "patch_grid"]

"""`pifexp data check`: read every image of a cohort, validate it, report it and build its cache."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pifexp.data.grid import (
    Grid,
    box_shortfall_mm,
    group_grids,
    mni_brain_box,
    reference_grid,
)
from pifexp.data.manifest import (
    LABEL,
    PATH,
    SESSION,
    SUBJECT,
    class_names,
    describe_row,
)
from pifexp.data.nifti import SPATIAL_AXES, ImageHeader, load_volume, read_header
from pifexp.data.parallel import parallel_map, worker_count
from pifexp.errors import PifexpError


@dataclass(frozen=True)
class CohortReport:
    """What `data check` found: counts per class, images per subject, grids, warnings, cache."""

    manifest: str
    classes: pd.DataFrame  # class, label, images, subjects
    images_per_subject: pd.DataFrame  # images, subjects
    grids: pd.DataFrame  # shape, voxel_size_mm, orientation, origin_mm, images
    reference: str  # the grid preprocessing starts from
    warnings: list[str] = field(default_factory=list)
    cache: str | None = None
    cache_status: str | None = None

    @property
    def images(self) -> int:
        return int(self.classes["images"].sum())

    @property
    def subjects(self) -> int:
        return int(self.images_per_subject["subjects"].sum())


def check_cohort(
    manifest_df: pd.DataFrame,
    *,
    resample_to: str | None,
    affine_atol_mm: float,
    mni_margin_mm: float,
    mni_resolution: int,
    read_voxels: bool = True,
    workers: int | None = None,
    progress: bool = True,
) -> CohortReport:
    """Validates every image of a manifest (see read_manifest) and describes the cohort.

    Hard problems raise a PifexpError naming the first bad row and how many more there are;
    soft ones end up in the report's warnings. read_voxels=False checks headers only.
    """
    names = [describe_row(manifest_df, i) for i in range(len(manifest_df))]
    paths = manifest_df[PATH].tolist()
    headers: list[ImageHeader | None] = []
    problems: list[str] = []
    for path, where in zip(paths, names, strict=True):
        try:
            headers.append(read_header(path, where))
        except PifexpError as error:
            headers.append(None)
            problems.append(str(error))
    _raise_first(problems)
    grids = [header.grid for header in headers if header is not None]
    reference = reference_grid(grids, names, resample_to, affine_atol_mm, mni_resolution)
    groups = group_grids(grids, affine_atol_mm)

    brain_box = mni_brain_box(mni_resolution)
    for grid, members in groups:
        shortfall = box_shortfall_mm(grid, brain_box)
        if shortfall > mni_margin_mm:
            problems.append(
                f"{names[members[0]]}: {paths[members[0]]} is not in MNI space: its field of view "
                f"({grid.describe()}) misses the MNI152 brain by {shortfall:.0f} mm "
                f"(data.check.mni_margin_mm={mni_margin_mm}); {len(members)} image(s) share it"
            )
    _raise_first(problems)

    if read_voxels:
        items = list(zip(range(len(paths)), paths, names, strict=True))
        found = parallel_map(_check_voxels, items, worker_count(workers), "checking", progress)
        _raise_first([problem for _, problem in sorted(found) if problem is not None])

    return CohortReport(
        manifest=str(manifest_df.attrs.get("manifest", "")),
        classes=_class_table(manifest_df),
        images_per_subject=_images_per_subject(manifest_df),
        grids=_grid_table(groups),
        reference=reference.describe(),
        warnings=_warnings(manifest_df, headers, groups, reference, affine_atol_mm),
    )


def format_report(report: CohortReport) -> str:
    per_subject = ", ".join(
        f"{row.images}: {row.subjects}" for row in report.images_per_subject.itertuples()
    )
    lines = [
        f"cohort: {report.manifest}",
        f"{report.images} images of {report.subjects} subjects",
        report.classes.to_string(index=False),
        f"images per subject (images: subjects): {per_subject}",
        "grids:",
        report.grids.to_string(index=False),
        f"preprocessing starts from: {report.reference}",
    ]
    if report.cache is not None:
        lines.append(f"cache: {report.cache} ({report.cache_status})")
    return "\n".join(lines)


def _check_voxels(item: tuple[int, str, str]) -> tuple[int, str | None]:
    position, path, where = item
    try:
        load_volume(path, where)
    except PifexpError as error:
        return position, str(error)
    return position, None


def _raise_first(problems: list[str]) -> None:
    if problems:
        more = f" ({len(problems) - 1} more problem(s) in other rows)" if len(problems) > 1 else ""
        raise PifexpError(f"{problems[0]}{more}")


def _class_table(manifest_df: pd.DataFrame) -> pd.DataFrame:
    names = class_names(manifest_df)
    rows = []
    for label, name in enumerate(names):
        members = manifest_df[manifest_df[LABEL] == label]
        rows.append(
            {
                "class": name,
                "label": label,
                "images": len(members),
                "subjects": members[SUBJECT].nunique(),
            }
        )
    return pd.DataFrame(rows)


def _images_per_subject(manifest_df: pd.DataFrame) -> pd.DataFrame:
    counts = manifest_df.groupby(SUBJECT).size().value_counts().sort_index()
    return pd.DataFrame({"images": counts.index.astype(int), "subjects": counts.to_numpy()})


def _grid_table(groups: list[tuple[Grid, list[int]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "shape": "x".join(map(str, grid.shape)),
                "voxel_size_mm": "x".join(f"{size:g}" for size in grid.voxel_size),
                "orientation": grid.orientation,
                "origin_mm": ",".join(f"{value:g}" for value in grid.affine[:3, 3]),
                "images": len(members),
            }
            for grid, members in groups
        ]
    )


def _warnings(
    manifest_df: pd.DataFrame,
    headers: list[ImageHeader | None],
    groups: list[tuple[Grid, list[int]]],
    reference: Grid,
    atol_mm: float,
) -> list[str]:
    warnings = []
    squeezed = sum(
        1 for header in headers if header is not None and len(header.shape) > SPATIAL_AXES
    )
    if squeezed:
        warnings.append(f"{squeezed} image(s) are 4D with a single volume; read as 3D")
    off_grid = sum(len(members) for grid, members in groups if not grid.same_as(reference, atol_mm))
    if off_grid:
        warnings.append(f"{off_grid} image(s) will be resampled to {reference.describe()}")
    per_subject = manifest_df.groupby(SUBJECT).size()
    several = int((per_subject > 1).sum())
    if several and (manifest_df[SESSION] == "").all():
        warnings.append(
            f"{several} subject(s) have several images but the manifest has no session column"
        )
    with_session = manifest_df[manifest_df[SESSION] != ""]
    repeated = with_session.duplicated([SUBJECT, SESSION]).sum()
    if repeated:
        warnings.append(f"{repeated} row(s) repeat a subject's session")
    mixed = int((manifest_df.groupby(SUBJECT)[LABEL].nunique() > 1).sum())
    if mixed:
        names = class_names(manifest_df)
        warnings.append(
            f"{mixed} subject(s) have images of both classes; they are split as {names[1]}"
        )
    return warnings

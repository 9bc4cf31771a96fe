"""Reading one NIfTI image: its header (cheap) and its voxels, with the checks each image must pass.

Every problem becomes a PifexpError whose message starts with `where` (the manifest row) and
names the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from pifexp.data.grid import Grid
from pifexp.errors import PifexpError

GZIP_SUFFIX = ".gz"
SPATIAL_AXES = 3
# NIfTI-2 first: its header is the larger one, and nibabel tells the two apart by size and magic
NIFTI_CLASSES = (nib.Nifti2Image, nib.Nifti1Image)
DECODE_ERRORS = (OSError, EOFError, zlib.error, ValueError, ImageFileError, HeaderDataError)
# qform and sform of one image may differ by rounding (the qform is stored as a quaternion); more
# than this (mm, at the corners of the field of view) means the header says two different things
QFORM_SFORM_TOLERANCE_MM = 1.0


@dataclass(frozen=True, eq=False)
class ImageHeader:
    """What the header says about one image."""

    path: str
    shape: tuple[int, ...]  # as stored: a single-volume 4D image has four axes
    grid: Grid
    data_type: str


def read_header(path: str | Path, where: str) -> ImageHeader:
    """The image's grid from its header, without reading voxels; rejects all but one 3D volume."""
    image = _open(Path(path), where)
    check_header(image, path, where)
    shape = image.shape
    if len(shape) < SPATIAL_AXES:
        raise PifexpError(f"{where}: {path} is not a 3D image (shape {_shape(shape)})")
    volumes = int(np.prod(shape[SPATIAL_AXES:], dtype=int))
    if volumes > 1:
        raise PifexpError(
            f"{where}: {path} holds {volumes} volumes (shape {_shape(shape)}); "
            f"give one 3D volume per manifest row"
        )
    return ImageHeader(
        str(path), tuple(int(n) for n in shape), Grid.of_image(image), str(image.get_data_dtype())
    )


def load_volume(path: str | Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The image's voxels (3D float32) and affine; rejects corrupt files, NaN/inf and empty images.

    A .nii.gz is decompressed in full first, so a damaged gzip stream (truncated, wrong checksum)
    is caught even where the voxels happen to decode.
    """
    path = Path(path)
    if path.name.endswith(GZIP_SUFFIX):
        _require_file(path, where)
        try:
            raw = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as error:
            raise PifexpError(f"{where}: {path} is a corrupt gzip file ({error})") from None
        image = _from_bytes(raw, path, where)
    else:
        image = _open(path, where)
    check_header(image, path, where)
    image = nib.funcs.squeeze_image(image)
    if len(image.shape) != SPATIAL_AXES:
        raise PifexpError(
            f"{where}: {path} is not a single 3D volume (shape {_shape(image.shape)})"
        )
    try:
        data = image.get_fdata(dtype=np.float32)
    except DECODE_ERRORS as error:
        raise PifexpError(f"{where}: {path} cannot be decoded ({error})") from None
    check_voxels(data, path, where)
    return data, np.asarray(image.affine, dtype=float)


def check_header(image: nib.Nifti1Image, path: str | Path, where: str) -> None:
    """Rejects what would be read wrongly without a word: complex or RGB voxels (nibabel would
    drop the imaginary part or fail), no orientation at all (nibabel would invent a scaling
    affine and the image would be taken as MNI), and a qform and an sform that disagree (which
    one is right cannot be known)."""
    data_type = image.get_data_dtype()
    if data_type.kind == "c":
        raise PifexpError(
            f"{where}: {path} has complex voxels ({data_type}); give magnitude images"
        )
    if data_type.fields is not None:
        raise PifexpError(
            f"{where}: {path} is an RGB or multi-channel image ({data_type}); give a single "
            "intensity channel"
        )
    header = image.header
    qform, qform_code = header.get_qform(coded=True)
    sform, sform_code = header.get_sform(coded=True)
    if not qform_code and not sform_code:
        raise PifexpError(
            f"{where}: {path} has no orientation (qform_code and sform_code are 0), so where its "
            "voxels lie in MNI space is unknown; set its sform to the MNI affine"
        )
    if qform_code and sform_code:
        apart = _corner_distance_mm(qform, sform, image.shape[:SPATIAL_AXES])
        if apart > QFORM_SFORM_TOLERANCE_MM:
            raise PifexpError(
                f"{where}: {path}'s qform (code {int(qform_code)}) and sform (code "
                f"{int(sform_code)}) place its voxels up to {apart:.1f} mm apart; make them agree "
                "(or clear the wrong one) so that one affine describes the image"
            )


def _corner_distance_mm(first: np.ndarray, second: np.ndarray, shape: tuple[int, ...]) -> float:
    corners = np.array([[0 if low else n - 1 for low, n in zip(pick, shape, strict=True)]
                        for pick in np.ndindex(2, 2, 2)], dtype=float)  # fmt: skip
    moved = nib.affines.apply_affine(first, corners) - nib.affines.apply_affine(second, corners)
    return float(np.linalg.norm(moved, axis=1).max())


def check_voxels(data: np.ndarray, path: str | Path, where: str) -> None:
    """Rejects non-finite voxels and an image without a single non-zero voxel."""
    finite = np.isfinite(data)
    if not finite.all():
        raise PifexpError(
            f"{where}: {path} has {int(finite.size - finite.sum())} non-finite voxel(s) (NaN/inf)"
        )
    if not data.any():
        raise PifexpError(f"{where}: {path} is empty (every voxel is zero)")


def _require_file(path: Path, where: str) -> None:
    if not path.exists():
        raise PifexpError(f"{where}: file {path} not found")
    if not (path.is_file() and os.access(path, os.R_OK)):
        raise PifexpError(f"{where}: {path} cannot be read (not a readable file)")


def _open(path: Path, where: str) -> nib.Nifti1Image:
    _require_file(path, where)
    try:
        image = nib.load(path)
    except FileNotFoundError:
        raise PifexpError(f"{where}: file {path} not found") from None
    except (PermissionError, IsADirectoryError) as error:
        raise PifexpError(f"{where}: {path} cannot be read ({error.strerror})") from None
    except ImageFileError as error:
        problem = "a corrupt gzip file" if "gzip" in str(error) else "not a NIfTI image"
        raise PifexpError(f"{where}: {path} is {problem} ({error})") from None
    except DECODE_ERRORS as error:
        raise PifexpError(f"{where}: {path} cannot be read as NIfTI ({error})") from None
    if not isinstance(image, nib.Nifti1Image):  # NIfTI-2 images are a subclass
        raise PifexpError(f"{where}: {path} is not a NIfTI image ({type(image).__name__})")
    return image


def _from_bytes(raw: bytes, path: Path, where: str) -> nib.Nifti1Image:
    for image_class in NIFTI_CLASSES:
        header_class = image_class.header_class
        if header_class.may_contain_header(raw[: header_class.sizeof_hdr]):
            try:
                return image_class.from_bytes(raw)
            except DECODE_ERRORS as error:
                raise PifexpError(f"{where}: {path} cannot be read as NIfTI ({error})") from None
    raise PifexpError(f"{where}: {path} is not a NIfTI image (no NIfTI header inside the gzip)")


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))

"""The cohort's table: one row per image (subject, file, label, optional session and covariates).

A manifest is a CSV or TSV file in the style of BIDS's participants.tsv. `read_manifest` checks the
table itself (columns, labels, duplicates, classes); the images are checked in `pifexp.data.check`.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import pandas as pd

from pifexp.errors import PifexpError

SUBJECT, PATH, LABEL, SESSION = "subject_id", "path", "label", "session"
REQUIRED_COLUMNS = (SUBJECT, PATH, LABEL)
TEXT_COLUMNS = (SUBJECT, PATH, LABEL, SESSION)
TAB_SEPARATED = (".tsv", ".tab")
# line 1 of the file is the header, so the first row is line 2
FIRST_ROW_LINE = 2
MIXED_LABEL_POLICIES = ("reject", "positive")
# BIDS participants.tsv and ClinicaDL names, accepted for ours
ALIASES = {"participant_id": SUBJECT, "session_id": SESSION, "diagnosis": LABEL}


def read_manifest(
    path: str | Path, classes: Sequence[str], mixed_label_subjects: str = "reject"
) -> pd.DataFrame:
    """The manifest's rows, checked: absolute paths, integer labels (0/1), a session column.

    Labels may be 0/1 or the task's class names (`classes`, label 0 first). Every other column is
    kept as a covariate. A subject with images of both classes is refused, or split as the
    positive class (`mixed_label_subjects`: reject | positive). The frame's index is the row's
    line in the file (for messages); `attrs` holds the manifest's path and the class names.
    """
    manifest = Path(path).expanduser().resolve()
    classes = [str(name) for name in classes]
    if len(classes) != 2:
        raise PifexpError(f"task.classes must name two classes, got {classes}")
    table = _read_table(manifest)
    table.index = pd.RangeIndex(FIRST_ROW_LINE, FIRST_ROW_LINE + len(table), name="line")
    table.attrs = {"manifest": str(manifest), "classes": classes}

    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise PifexpError(
            f"manifest {manifest} lacks the column(s) {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED_COLUMNS)}; found {', '.join(map(str, table.columns))})"
        )
    if table.empty:
        raise PifexpError(f"manifest {manifest} has no rows")
    if SESSION not in table.columns:
        table[SESSION] = ""
    for column in TEXT_COLUMNS:
        table[column] = table[column].fillna("").astype(str).str.strip()
    for column in REQUIRED_COLUMNS:
        blank = table.index[table[column] == ""]
        if len(blank):
            raise PifexpError(f"{manifest.name} line {blank[0]}: empty {column!r}")

    table[LABEL] = _labels(table, classes, manifest)
    table[PATH] = [
        str(_absolute(value, manifest.parent, f"{manifest.name} line {line}"))
        for line, value in table[PATH].items()
    ]
    _reject_duplicate_files(table, manifest)
    _check_subject_labels(table, manifest, classes, mixed_label_subjects)
    present = set(table[LABEL])
    if len(present) < 2:
        (only,) = present
        raise PifexpError(
            f"manifest {manifest}: every image is labelled {classes[only]}; "
            f"the task needs both {classes[0]} and {classes[1]}"
        )
    ordered = [SUBJECT, PATH, LABEL, SESSION]
    return table[ordered + [c for c in table.columns if c not in ordered]]


def describe_row(manifest_df: pd.DataFrame, position: int) -> str:
    """'manifest.csv line 7 (subject sub-03)': where a row came from, for messages."""
    row = manifest_df.iloc[position]
    source = manifest_df.attrs.get("manifest")
    where = (
        f"{Path(source).name} line {manifest_df.index[position]}"
        if source
        else f"manifest row {position}"
    )
    return f"{where} (subject {row[SUBJECT]})"


def class_names(manifest_df: pd.DataFrame) -> list[str]:
    """The task's class names (label 0, label 1) that the manifest was read with."""
    return list(manifest_df.attrs.get("classes", ["0", "1"]))


def _read_table(manifest: Path) -> pd.DataFrame:
    if not manifest.is_file():
        raise PifexpError(f"manifest {manifest} not found (data.manifest)")
    separator = "\t" if manifest.suffix.lower() in TAB_SEPARATED else ","
    try:
        names = _column_names(manifest, separator)
        read = partial(pd.read_csv, manifest, sep=separator, header=0, names=names)
        table = read(dtype=dict.fromkeys(TEXT_COLUMNS, str))
        # ids and paths as written: "NA", "None" or "nan" are a subject's name, not a gap
        text = [column for column in TEXT_COLUMNS if column in names]
        table[text] = read(usecols=text, dtype=str, keep_default_na=False)[text]
    except pd.errors.EmptyDataError:
        raise PifexpError(f"manifest {manifest} is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, csv.Error) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PifexpError(f"manifest {manifest} cannot be read as a table: {reason}") from None
    return table


def _column_names(manifest: Path, separator: str) -> list[str]:
    """The header's names, stripped, BIDS names (participant_id, session_id, diagnosis) taken as
    ours; two columns that end up with one name are an error rather than a silent rename."""
    with open(manifest, newline="", encoding="utf-8") as handle:
        header = next(csv.reader(handle, delimiter=separator), None)
    if not header:
        raise pd.errors.EmptyDataError
    names = [ALIASES.get(name.strip(), name.strip()) for name in header]
    for name in dict.fromkeys(names):
        columns = [i + 1 for i, other in enumerate(names) if other == name]
        if len(columns) > 1:
            written = ", ".join(repr(header[i - 1].strip()) for i in columns)
            raise PifexpError(
                f"manifest {manifest}: columns {', '.join(map(str, columns))} ({written}) are "
                f"all {name!r}; keep one"
            )
    return names


def _labels(table: pd.DataFrame, classes: Sequence[str], manifest: Path) -> list[int]:
    mapping = {"0": 0, "1": 1, classes[0]: 0, classes[1]: 1}
    unknown = table.index[~table[LABEL].isin(list(mapping))]
    if len(unknown):
        line = unknown[0]
        raise PifexpError(
            f"{manifest.name} line {line} (subject {table.at[line, SUBJECT]}): label "
            f"{table.at[line, LABEL]!r} is not one of 0, 1, {classes[0]}, {classes[1]} "
            f"(task.classes)"
        )
    return [mapping[value] for value in table[LABEL]]


def _absolute(value: str, folder: Path, where: str) -> Path:
    path = Path(value).expanduser()
    try:
        return (path if path.is_absolute() else folder / path).resolve()
    except (RuntimeError, OSError) as error:  # a symbolic link loop
        raise PifexpError(f"{where}: {value} cannot be resolved ({error})") from None


def _reject_duplicate_files(table: pd.DataFrame, manifest: Path) -> None:
    """One file may not be two rows: the same path, or two paths to one file (a hard link)."""
    identity = [_file_identity(path) for path in table[PATH]]
    repeated = table[pd.Series(identity, index=table.index).duplicated(keep=False)]
    if len(repeated):
        first = identity[table.index.get_loc(repeated.index[0])]
        lines = [line for line, key in zip(table.index, identity, strict=True) if key == first]
        files = sorted(set(table.loc[lines, PATH]))
        named = f"the same file {files[0]}" if len(files) == 1 else (
            f"one file under two names ({' and '.join(files)}: a hard link)")  # fmt: skip
        raise PifexpError(f"{manifest.name} lines {', '.join(map(str, lines))} name {named}")


def _file_identity(path: str) -> tuple:
    """The file behind a path (device and inode), or the path where the file is missing."""
    try:
        status = os.stat(path)
    except OSError:
        return ("path", path)
    return ("inode", status.st_dev, status.st_ino)


def _check_subject_labels(
    table: pd.DataFrame, manifest: Path, classes: Sequence[str], policy: str
) -> None:
    if policy not in MIXED_LABEL_POLICIES:
        raise PifexpError(
            f"task.mixed_label_subjects={policy!r} must be one of {', '.join(MIXED_LABEL_POLICIES)}"
        )
    labels_per_subject = table.groupby(SUBJECT, sort=False)[LABEL].nunique()
    mixed = labels_per_subject.index[labels_per_subject > 1]
    if len(mixed) and policy == "reject":
        subject = mixed[0]
        rows = table[table[SUBJECT] == subject]
        first_line = {label: rows.index[rows[LABEL] == label][0] for label in (0, 1)}
        raise PifexpError(
            f"{manifest.name}: subject {subject} has two labels, {classes[0]} (line "
            f"{first_line[0]}) and {classes[1]} (line {first_line[1]}); "
            f"set task.mixed_label_subjects=positive to split such subjects as {classes[1]}"
        )

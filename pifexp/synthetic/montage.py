"""montage.png: a look at a finished cohort, the first subjects of each class with the effect map
on top (matplotlib and nilearn's plotting, imported only when a montage is drawn)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from pifexp.errors import PifexpError
from pifexp.files import write_atomic
from pifexp.synthetic.settings import EFFECT_MAP_FILE, MANIFEST_FILE, MONTAGE_FILE, CohortSettings

# inches per panel, resolution
PANEL_SIZE_INCHES = (6.0, 2.4)
MONTAGE_DPI = 100


def write_montage(folder: Path, settings: CohortSettings) -> Path:
    """montage.png: the first subjects of each class (one column per class; one image of each
    subject), each with the effect map on top (its colour bar in image units), cut where the
    effect is largest (the cut's MNI coordinates shown)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt
        from nilearn import plotting
    except ImportError as error:
        raise PifexpError(
            f"data.synthetic.plot=true needs matplotlib ({error}); install it or set plot=false"
        ) from None
    folder = Path(folder)
    synthetic = settings.synthetic
    manifest = pd.read_csv(folder / MANIFEST_FILE, dtype={"subject_id": str, "session": str})
    effect = nib.load(folder / EFFECT_MAP_FILE)
    effect_data = effect.get_fdata(dtype=np.float32)
    peak = np.unravel_index(int(np.argmax(np.abs(effect_data))), effect_data.shape)
    per_class = int(synthetic["plot_subjects_per_class"])
    width, height = PANEL_SIZE_INCHES
    figure, axes = plt.subplots(
        per_class,
        len(settings.classes),
        figsize=(width * len(settings.classes), height * per_class),
        squeeze=False,
    )
    try:
        for column, name in enumerate(settings.classes):
            members = manifest[manifest["label"] == name]
            rows = members.drop_duplicates("subject_id").head(per_class)  # distinct subjects
            for row_index in range(per_class):
                ax = axes[row_index, column]
                if row_index >= len(rows):
                    ax.axis("off")
                    continue
                row = rows.iloc[row_index]
                plotting.plot_stat_map(
                    effect,
                    bg_img=str(folder / row["path"]),
                    axes=ax,
                    cut_coords=nib.affines.apply_affine(effect.affine, peak),
                    threshold=float(synthetic["plot_threshold"]) * float(np.abs(effect_data).max()),
                    colorbar=True,
                    draw_cross=False,
                    annotate=True,
                    title=f"{name}: {row['subject_id']} {row['session']}",
                )
        return write_atomic(
            folder / MONTAGE_FILE,
            lambda tmp: figure.savefig(tmp, format="png", dpi=MONTAGE_DPI),
        )
    finally:
        plt.close(figure)

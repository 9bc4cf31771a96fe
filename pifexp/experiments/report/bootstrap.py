"""How uncertain one seed's test metrics are: a bootstrap over its test subjects.

Subjects are resampled within each class (so every resample holds both classes, as the test set
did) and all images of a drawn subject come along (a cluster bootstrap: a subject with three visits
is one draw, not three). scipy.stats.bootstrap draws the resamples; the statistic turns each
resample into image weights and computes balanced accuracy and ROC AUC for all resamples at once,
the weighted forms of sklearn's balanced_accuracy_score and roc_auc_score (tests check them
against sklearn with sample weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

THRESHOLD = 0.5  # prediction = probability >= 0.5, as in training


@dataclass(frozen=True)
class SeedInterval:
    balanced_accuracy: tuple[float, float]
    roc_auc: tuple[float, float]
    clustered: bool  # resampled by subject (False: by image, where subjects are not recorded)


def weighted_balanced_accuracy(
    labels: np.ndarray, predicted: np.ndarray, weights: np.ndarray
) -> np.ndarray:
    """Balanced accuracy per row of `weights` (R, n): the mean of the two classes' weighted
    recalls."""
    recalls = []
    for label in (0, 1):
        members = labels == label
        hits = weights[..., members] @ (predicted[members] == label).astype(float)
        recalls.append(hits / weights[..., members].sum(axis=-1))
    return (recalls[0] + recalls[1]) / 2


def weighted_roc_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC per row of `weights` (R, n): the weighted share of (positive, negative) pairs that
    the scores order correctly, ties counting half."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    # (n_pos, n_neg): 1 where the positive scores higher, 0.5 on a tie
    ordered = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative)
    w_pos, w_neg = weights[..., labels == 1], weights[..., labels == 0]
    correct = np.einsum("...i,ij,...j->...", w_pos, ordered, w_neg)
    return correct / (w_pos.sum(axis=-1) * w_neg.sum(axis=-1))


def seed_interval(
    predictions: pd.DataFrame, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> SeedInterval:
    """Percentile intervals of one seed's test balanced accuracy and ROC AUC (test_predictions:
    label, probability and, where recorded, subject_id)."""
    labels = predictions["label"].to_numpy(dtype=int)
    scores = predictions["probability"].to_numpy(dtype=float)
    clustered = "subject_id" in predictions
    groups = predictions["subject_id"].astype(str) if clustered else pd.Series(range(len(labels)))
    cluster_of_image = pd.factorize(groups)[0]
    cluster_label = pd.Series(labels).groupby(cluster_of_image).max().to_numpy()
    by_class = [np.flatnonzero(cluster_label == label) for label in (0, 1)]
    if min(len(members) for members in by_class) < 2:
        nan = (math.nan, math.nan)
        return SeedInterval(nan, nan, clustered)
    predicted = (scores >= THRESHOLD).astype(int)
    n_clusters = len(cluster_label)

    def statistic(negatives: np.ndarray, positives: np.ndarray, axis: int = -1) -> np.ndarray:
        drawn = np.concatenate([negatives, positives], axis=-1)  # (..., clusters drawn)
        batch = drawn.shape[:-1]
        flat = drawn.reshape(-1, drawn.shape[-1])  # (R, m)
        # how often each cluster was drawn, per resample: (R, n_clusters)
        offsets = n_clusters * np.arange(len(flat))[:, None]
        counts = np.bincount((flat + offsets).ravel(), minlength=len(flat) * n_clusters)
        weights = counts.reshape(len(flat), n_clusters)[:, cluster_of_image].astype(float)
        weights = weights.reshape(*batch, len(cluster_of_image))  # (..., images)
        return np.stack(
            [weighted_balanced_accuracy(labels, predicted, weights),
             weighted_roc_auc(labels, scores, weights)]
        )  # fmt: skip

    result = stats.bootstrap(
        (by_class[0], by_class[1]),
        statistic,
        paired=False,
        vectorized=True,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return SeedInterval((float(low[0]), float(high[0])), (float(low[1]), float(high[1])), clustered)

import math

import numpy as np
import pytest

from pifexp.training.metrics import binary_metrics


def test_metrics_of_a_known_confusion_matrix():
    labels = np.array([1, 1, 1, 1, 0, 0])
    probabilities = np.array([0.9, 0.8, 0.6, 0.2, 0.4, 0.7])
    metrics = binary_metrics(labels, probabilities)
    assert metrics["sensitivity"] == pytest.approx(3 / 4)
    assert metrics["specificity"] == pytest.approx(1 / 2)
    assert metrics["balanced_accuracy"] == pytest.approx((3 / 4 + 1 / 2) / 2)
    # pairs (positive, negative) ranked right: 0.9, 0.8 beat both; 0.6 beats 0.4; 0.2 beats none
    assert metrics["roc_auc"] == pytest.approx(5 / 8)


def test_threshold_is_inclusive():
    metrics = binary_metrics(np.array([1, 0]), np.array([0.5, 0.49]))
    assert metrics["balanced_accuracy"] == 1.0


# one class only: scikit-learn warns about the predicted class missing from the labels
@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_single_class_gives_nan_auc_not_an_exception():
    metrics = binary_metrics(np.array([1, 1]), np.array([0.7, 0.2]))
    assert math.isnan(metrics["roc_auc"]) and math.isnan(metrics["specificity"])
    assert metrics["sensitivity"] == 0.5

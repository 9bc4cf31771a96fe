"""pifexp predict RUN_DIR data.manifest=FILE: a finished run applied to new images."""

from __future__ import annotations

from omegaconf import DictConfig

from pifexp.experiments.apply.predict import Predictions, predict
from pifexp.experiments.apply.specs import predict_spec


def predict_command(cfg: DictConfig) -> Predictions:
    predictions = predict(predict_spec(cfg))
    table = predictions.table
    print(f"{len(table)} image(s), {len(predictions.run.seeds)} seed(s) of {predictions.run.name}")
    print(table["predicted"].value_counts().to_string())
    if predictions.metrics is not None:
        print(predictions.metrics.to_string(index=False, float_format="%.3f"))
    written = [predictions.path, predictions.metrics_path]
    print("written: " + ", ".join(str(path) for path in written if path is not None))
    return predictions

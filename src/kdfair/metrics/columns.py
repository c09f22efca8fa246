"""Every metric column of a results.csv row, from one model's saved predictions.

    accuracy, dpd_<attr>, eod_<attr> (per protected attribute), individual_fairness, consistency

A metric that the data cannot define (a group with no positive example, say, on a tiny test split)
becomes NaN with a logged warning rather than failing a job whose models are already trained.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from kdfair.metrics.accuracy import accuracy
from kdfair.metrics.group import UndefinedMetricError, multiclass_dpd, multiclass_eod
from kdfair.metrics.individual import Neighbourhood, consistency, lipschitz_individual_fairness
from kdfair.predictions import Predictions

log = logging.getLogger(__name__)


def metric_columns(
    predictions: Predictions,
    *,
    num_classes: int,
    neighbourhood: Neighbourhood | None,
    name: str = "model",
) -> dict[str, float]:
    """The metric columns for one model, in contract order."""
    columns = {"accuracy": accuracy(predictions.y_true, predictions.y_pred)}
    for attr, codes in predictions.attributes.items():
        groups = np.asarray(predictions.attribute_labels[attr])[codes]  # names, for clear messages
        for metric, function in (("dpd", multiclass_dpd), ("eod", multiclass_eod)):
            try:
                columns[f"{metric}_{attr}"], _ = function(
                    predictions.y_true,
                    predictions.y_pred,
                    sensitive_features=groups,
                    num_classes=num_classes,
                )
            except UndefinedMetricError as e:
                log.warning("%s: %s w.r.t. %s left empty: %s", name, metric.upper(), attr, e)
                columns[f"{metric}_{attr}"] = math.nan
    if neighbourhood is not None:
        columns["individual_fairness"] = lipschitz_individual_fairness(
            predictions.logits, neighbourhood
        )
        columns["consistency"] = (
            consistency(predictions.y_pred, neighbourhood) if neighbourhood.k else math.nan
        )
    return columns

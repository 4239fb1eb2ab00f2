"""hf_av accuracy: top-1 accuracy as an `evaluate` module (loadable offline from the hf_av package)."""

import datasets
import evaluate

from hf_av.metrics.functional import accuracy

_DESCRIPTION = "Top-1 accuracy. predictions: class ids or per-class scores (arg-maxed); references: class ids."
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[int]` or `list[list[float]]`): predicted class ids, or scores/logits per class.
    references (`list[int]`): true class ids.
    sample_weight (`list[float]`, optional): per-example weights.
Returns:
    accuracy (`float`): fraction of correct predictions.
Example:
    >>> import hf_av.metrics
    >>> hf_av.metrics.load("accuracy").compute(predictions=[0, 1, 1], references=[0, 1, 0])
    {'accuracy': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Accuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
                datasets.Features(
                    {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
                ),
            ],
        )

    def _compute(self, predictions, references, sample_weight=None):
        return {"accuracy": accuracy(predictions, references, sample_weight=sample_weight)}

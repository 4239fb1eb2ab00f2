"""hf_av mean_average_precision: AudioSet-style mAP (macro average over classes) as an `evaluate` module."""

import datasets
import evaluate

from hf_av.metrics.functional import mean_average_precision

_DESCRIPTION = (
    "AudioSet-style mean average precision: the unweighted mean over classes of each class's average "
    "precision. Classes without any positive reference are skipped (AP undefined) and counted in "
    "`num_skipped_classes`."
)
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[float]]`): [N, C] scores (logits or probabilities; only the ranking matters).
    references (`list[list[int]]`): [N, C] multi-hot targets.
    return_per_class (`bool`, optional): also return `average_precision` per class (nan when skipped).
Returns:
    mAP (`float`), num_skipped_classes (`int`).
Example:
    >>> import hf_av.metrics
    >>> m = hf_av.metrics.load("mean_average_precision")
    >>> m.compute(predictions=[[0.9, 0.1], [0.2, 0.8]], references=[[1, 0], [0, 1]])
    {'mAP': 1.0, 'num_skipped_classes': 0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MeanAveragePrecision(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("float32")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, return_per_class=False):
        return mean_average_precision(predictions, references, return_per_class=return_per_class)

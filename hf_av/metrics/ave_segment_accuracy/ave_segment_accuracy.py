"""hf_av ave_segment_accuracy: AVE per-second event accuracy (background included) as an `evaluate` module."""

import datasets
import evaluate

from hf_av.metrics.functional import ave_segment_accuracy

_DESCRIPTION = (
    "Audio-visual event localisation accuracy (AVE protocol): the fraction of one-second segments, over all "
    "videos, whose predicted class (the background class included) equals the reference."
)
_KWARGS_DESCRIPTION = """
Args:
    predictions (`list[list[int]]`): [N, T] predicted class id per segment.
    references (`list[list[int]]`): [N, T] reference class id per segment.
    ignore_index (`int`, optional, default -100): reference value of padded segments, not counted.
Returns:
    segment_accuracy (`float`).
Example:
    >>> import hf_av.metrics
    >>> m = hf_av.metrics.load("ave_segment_accuracy")
    >>> m.compute(predictions=[[1, 1, 28]], references=[[1, 28, 28]])
    {'segment_accuracy': 0.6666666666666666}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class AveSegmentAccuracy(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
        )

    def _compute(self, predictions, references, ignore_index=-100):
        import numpy as np

        lengths = {len(p) for p in predictions} | {len(r) for r in references}
        if len(lengths) > 1:  # ragged: score video by video with the same pooled definition
            preds = np.concatenate([np.asarray(p, dtype=np.int64) for p in predictions])
            refs = np.concatenate([np.asarray(r, dtype=np.int64) for r in references])
            return {"segment_accuracy": ave_segment_accuracy(preds, refs, ignore_index=ignore_index)}
        return {"segment_accuracy": ave_segment_accuracy(predictions, references, ignore_index=ignore_index)}

"""hf_av retrieval_recall: audio->visual and visual->audio recall@K as an `evaluate` module."""

import datasets
import evaluate
import numpy as np

from hf_av.metrics.functional import retrieval_recall

_DESCRIPTION = (
    "Cross-modal retrieval recall@K in both directions (audio->visual and visual->audio), instance-level "
    "(the paired item must be retrieved) or class-level (any item with the query's label is a hit)."
)
_KWARGS_DESCRIPTION = """
Two input forms (one per call sequence):
  1. predictions = audio embeddings [N, D], references = visual embeddings [N, D] (row i of each is a pair).
  2. predictions = similarity rows [N, M] (audio query i against every visual item),
     references = index of the visual item paired with query i (int). visual->audio is computed from
     the transposed matrix when the references form a permutation (square matrix).
Args (compute keywords):
    labels (`list[int]`, optional): class label of every row; switches to class-level matching.
    visual_labels (`list[int]`, optional): labels of the M visual items when they differ from `labels`.
    ks (`list[int]`, default [1, 5, 10]).
    normalize (`bool`, default True): cosine similarity for embeddings.
Returns:
    audio_to_visual_recall@K and visual_to_audio_recall@K for every K.
Example:
    >>> import hf_av.metrics
    >>> m = hf_av.metrics.load("retrieval_recall")
    >>> m.compute(predictions=[[1.0, 0.0], [0.0, 1.0]], references=[[1.0, 0.1], [0.1, 1.0]], ks=[1])
    {'audio_to_visual_recall@1': 1.0, 'visual_to_audio_recall@1': 1.0}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RetrievalRecall(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Sequence(datasets.Value("float32")),
                        "references": datasets.Sequence(datasets.Value("float32")),
                    }
                ),
                datasets.Features(
                    {"predictions": datasets.Sequence(datasets.Value("float32")), "references": datasets.Value("int64")}
                ),
            ],
        )

    def _compute(self, predictions, references, labels=None, visual_labels=None, ks=(1, 5, 10), normalize=True):
        preds = np.asarray(predictions, dtype=np.float64)
        refs = np.asarray(references)
        if refs.ndim == 2:  # embedding pair
            return retrieval_recall(
                audio_embeddings=preds, visual_embeddings=refs, labels=labels, visual_labels=visual_labels,
                ks=ks, normalize=normalize,
            )
        # similarity rows + paired indices: reorder columns so that query i is paired with column i
        refs = refs.astype(np.int64)
        n, m = preds.shape
        if labels is not None:
            return retrieval_recall(similarity=preds, labels=labels, visual_labels=visual_labels, ks=ks)
        if n == m and np.array_equal(np.sort(refs), np.arange(m)):
            return retrieval_recall(similarity=preds[:, refs], ks=ks)
        # not a permutation: only audio->visual is defined
        ranks = (preds >= preds[np.arange(n), refs][:, None]).sum(axis=1) - 1  # ties ranked before the pair
        return {f"audio_to_visual_recall@{k}": float((ranks < k).mean()) for k in ks}

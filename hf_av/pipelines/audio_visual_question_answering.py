"""`audio-visual-question-answering`: a clip and a question -> the most likely answers (DG-SCT on MUSIC-AVQA).

```python
answerer = pipeline("audio-visual-question-answering", model="path/to/dg-sct-avqa")
answerer("clip.mp4", question="How many instruments are sounding in the video?", top_k=3)
# [{"answer": "two", "answer_id": 3, "score": 0.81}, {"answer": "three", ...}, ...]
```

The question goes through the family processor with the clip (`processor(videos=..., text=question)`), which
tokenises it the original way (`DgSctQuestionTokenizer`: split on spaces, the last word's "?" dropped, right-padded
to the maximum length) and refuses a question longer than that or with a word outside the vocabulary. MUSIC-AVQA
template questions (`"Is the <Object> ...?"`) take their slot values with `templ_values=`. The answer does not
depend on the negative frames of the original's matching loss, so none are needed here.
"""

from __future__ import annotations

import inspect

import torch
from transformers import Pipeline

from ..processing.base import describe_source
from .base import AudioVisualInputMixin

__all__ = ["AudioVisualQuestionAnsweringPipeline"]


class AudioVisualQuestionAnsweringPipeline(AudioVisualInputMixin, Pipeline):
    """Answers a question about a clip (audio and frames) with the answer vocabulary of the model
    (`config.id2label`).

    Inputs: a media file (path, bytes, file object) or a dict of arrays / files as the other audio-visual pipelines
    (`{"audio": ..., "sampling_rate": ..., "frames": ...}`), which may also carry the `"question"` (and
    `"templ_values"`).

    Call arguments:
        question (`str`): the question (also the second positional argument).
        templ_values (`str` or `list[str]`, *optional*): values of the question's template slots (`<Object>`, ...),
            as the MUSIC-AVQA json's `templ_values`.
        top_k (`int`, defaults to 5): how many answers to return (at most the vocabulary size).
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_batchable()

    def __call__(self, inputs, question: str | None = None, **kwargs):
        if question is not None:
            kwargs["question"] = question
        return super().__call__(inputs, **kwargs)

    def _sanitize_parameters(self, question=None, templ_values=None, top_k=None, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)} for audio-visual-question-answering")
        preprocess, postprocess = {}, {}
        if question is not None:
            preprocess["question"] = question
        if templ_values is not None:
            preprocess["templ_values"] = templ_values
        if top_k is not None:
            if not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            postprocess["top_k"] = top_k
        return preprocess, {}, postprocess

    def preprocess(self, inputs, question=None, templ_values=None):
        if isinstance(inputs, dict) and ("question" in inputs or "templ_values" in inputs):
            inputs = dict(inputs)
            question = inputs.pop("question", question)
            templ_values = inputs.pop("templ_values", templ_values)
        if not isinstance(question, str) or not question.strip():
            raise ValueError(
                "audio-visual-question-answering needs a question: answerer(clip, question=\"How many instruments "
                f"are sounding in the video?\"), got {question!r}"
            )
        question = self._filled_question(question, templ_values)
        processor = self._family_processor()
        if getattr(processor, "tokenizer", None) is None or "text" not in inspect.signature(processor.__call__).parameters:
            raise ValueError(
                f"{type(processor).__name__} has no question tokenizer: the folder needs a "
                "DgSctQuestionAnsweringProcessor with the question vocabulary (convert with --question-json "
                "avqa-train.json, the MUSIC-AVQA train json the original builds its vocabulary from)"
            )
        clip = self.prepare_clip(inputs, modality="audio-visual", frames="all", processor_options={"text": question})
        missing = [name for name in ("input_values", "pixel_values", "input_ids") if clip.get(name) is None]
        if missing:
            label = "<dict input>" if isinstance(inputs, dict) else describe_source(inputs)
            raise ValueError(f"{label}: the processor gave no {missing}; the model answers from audio, frames and the "
                             "question together")
        return self._model_dtype_cast(clip)

    @staticmethod
    def _filled_question(question: str, templ_values) -> str:
        from ..processing.dg_sct_tasks import fill_question_template

        if templ_values is not None:
            question = fill_question_template(question, templ_values)
        slots = [word for word in question.split() if "<" in word]
        if slots:
            raise ValueError(
                f"The question still has template slots {slots}; pass their values with templ_values= (as the "
                f"MUSIC-AVQA json's templ_values): {question!r}"
            )
        return question

    def _forward(self, model_inputs):
        return {"logits": self.model(**model_inputs).logits}

    def postprocess(self, model_outputs, top_k=5):
        probabilities = model_outputs["logits"][0].float().softmax(-1)
        id2label = {int(k): v for k, v in self.model.config.id2label.items()}
        scores, ids = torch.topk(probabilities, min(top_k, probabilities.shape[-1]))
        return [
            {"answer": id2label.get(i, str(i)), "answer_id": i, "score": score}
            for score, i in zip(scores.tolist(), ids.tolist())
        ]

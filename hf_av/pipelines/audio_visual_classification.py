"""`audio-visual-classification`: a clip (file, bytes or arrays) -> top-k labels."""

from __future__ import annotations

import warnings

import torch
from transformers import Pipeline

from .base import AudioVisualInputMixin

__all__ = ["AudioVisualClassificationPipeline", "ClipClassifierLoader"]


# the Auto classes whose models are clip classifiers
CLASSIFIER_AUTO = (
    "AutoModelForAudioVisualClassification", "AutoModelForAudioClassification", "AutoModelForVideoClassification",
)


class ClipClassifierLoader:
    """What `pipeline("audio-visual-classification", model=folder)` loads a folder with.

    The folder's own head when its config names one (`architectures`) that its family's row registers as a clip
    classifier (`CLASSIFIER_AUTO`), so a family
    with one classifier per modality (VATT: `VattForVideoClassification`, `VattForAudioClassification`) gets the
    head it was saved as; otherwise `AutoModelForAudioVisualClassification` (the family's clip classifier).
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        from transformers import AutoConfig

        from ..auto import AutoModelForAudioVisualClassification
        from ..families import FAMILIES

        config = kwargs.get("config")
        if config is None or isinstance(config, str):
            config = AutoConfig.from_pretrained(config or pretrained_model_name_or_path)
        family = FAMILIES.get(getattr(config, "model_type", None))
        classifiers = set()
        if family is not None:
            classifiers = {path.rsplit(".", 1)[-1] for auto, path in family.models.items() if auto in CLASSIFIER_AUTO}
        for architecture in getattr(config, "architectures", None) or ():
            if architecture in classifiers:
                kwargs.pop("code_revision", None)  # only the Auto classes take it
                head = family.model_class(architecture)
                return head.from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)
        return AutoModelForAudioVisualClassification.from_pretrained(pretrained_model_name_or_path, *model_args,
                                                                     **kwargs)


class AudioVisualClassificationPipeline(AudioVisualInputMixin, Pipeline):
    """Classify audio-visual clips with an audio-visual classification head (CAV-MAE fine-tuned models).

    ```python
    import hf_av  # registers the pipeline
    from transformers import pipeline

    classifier = pipeline("audio-visual-classification", model="path/to/cav-mae-finetuned")
    classifier("clip.mp4", top_k=3)                     # [{"label": ..., "score": ...}, ...]
    classifier(["a.mp4", "b.mp4"], batch_size=2)        # batched
    classifier({"audio": waveform, "sampling_rate": 16000})  # audio only: the model picks its mode from its config
    ```

    Call arguments:
        top_k (`int`, defaults to 5): number of labels returned (all labels when larger than `num_labels`).
        frames (`"all"`, `"middle"` or `int`, defaults to `"all"`): for files, which of the family's evaluation
            frames are used. `"all"` classifies each of them and averages the per-frame probabilities, as the
            papers evaluate (CAV-MAE: ten frames); `"middle"` uses the single evaluation frame (faster).
        modality (`"audio-visual"`, `"audio"`, `"visual"` or `None`): what to feed the model; `None` uses every
            modality the input has (`"video"` is a deprecated name of `"visual"`). The pipeline passes inputs only:
            given one modality, the model decides from its config how to run (CAV-MAE fine-tuned multimodally uses
            the original's missing-modality mode), exactly as when it is called directly.
        mode (`str`, *optional*): deprecated; call the model directly to force one of its inference modes.
        function_to_apply (`"sigmoid"`, `"softmax"` or `"none"`): score function; by default sigmoid for
            multi-label models (`problem_type="multi_label_classification"`, AudioSet), the model's own
            `probabilities` when its config sets no `problem_type` and it returns them (VATT: softmax for the video
            classifier, sigmoid for the audio one), softmax otherwise.

    VATT's two classifiers (`VattForVideoClassification`, `VattForAudioClassification`) work here too: a folder is
    loaded as the head its config names, and each is fed only the input it takes (frames or waveform), through the
    VATT processor (several views per clip are averaged by the model).
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_batchable()

    def _sanitize_parameters(self, top_k=None, frames=None, modality=None, mode=None, function_to_apply=None, **kwargs):
        preprocess, forward, postprocess = {}, {}, {}
        if frames is not None:
            preprocess["frames"] = frames
        if modality is not None:
            preprocess["modality"] = modality
        if mode is not None:
            warnings.warn(
                "audio-visual-classification: mode= is deprecated; the model chooses its mode from its inputs and "
                "config. Call the model directly to force a mode.", FutureWarning, stacklevel=3,
            )
            forward["mode"] = mode
        if top_k is not None:
            if not isinstance(top_k, int) or top_k < 1:
                raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            if function_to_apply not in ("sigmoid", "softmax", "none"):
                raise ValueError(f"function_to_apply must be 'sigmoid', 'softmax' or 'none', got {function_to_apply!r}")
            postprocess["function_to_apply"] = function_to_apply
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)} for audio-visual-classification")
        return preprocess, forward, postprocess

    def __call__(self, inputs, **kwargs):
        """Classify one clip or a list of clips (see the class docstring for inputs and options)."""
        return super().__call__(inputs, **kwargs)

    def preprocess(self, inputs, frames="all", modality=None):
        clip = self.prepare_clip(inputs, modality=modality, frames=frames)
        clip.pop("duration", None)
        return self._model_dtype_cast(clip)

    def _forward(self, model_inputs, mode=None):
        # Inputs only: the model decides what to do with a missing modality (deprecated mode= is passed through).
        outputs = self.model(**model_inputs, **({} if mode is None else {"mode": mode}))
        result = {"logits": outputs.logits}
        if getattr(outputs, "probabilities", None) is not None:
            result["probabilities"] = outputs.probabilities
        return result

    def postprocess(self, model_outputs, top_k=5, function_to_apply=None):
        config = self.model.config
        logits = model_outputs["logits"][0].float()
        probabilities = model_outputs.get("probabilities")
        if function_to_apply is None:
            if config.problem_type == "regression" or config.num_labels == 1:
                function_to_apply = "none"
            elif config.problem_type == "multi_label_classification":
                function_to_apply = "sigmoid"
            elif config.problem_type is None and probabilities is not None:
                # the model's own score function (VATT: softmax for video, sigmoid for its AudioSet-style audio head)
                function_to_apply = "model"
            else:
                function_to_apply = "softmax"
        if function_to_apply == "model":
            scores = probabilities[0].float()
        elif function_to_apply == "softmax":
            scores = logits.softmax(-1)
        elif function_to_apply == "sigmoid":
            scores = logits.sigmoid()
        else:
            scores = logits
        top_k = min(top_k, scores.shape[-1])
        values, ids = torch.topk(scores, top_k)
        return [
            {"label": config.id2label.get(int(i), str(int(i))), "score": float(v)}
            for v, i in zip(values.tolist(), ids.tolist())
        ]

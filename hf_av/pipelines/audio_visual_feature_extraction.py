"""`audio-visual-feature-extraction`: a clip -> joint-space embeddings (and optionally token features)."""

from __future__ import annotations

from transformers import Pipeline

from .base import AudioVisualInputMixin
from .embeddings import encode_modalities

__all__ = ["AudioVisualFeatureExtractionPipeline"]


class AudioVisualFeatureExtractionPipeline(AudioVisualInputMixin, Pipeline):
    """Clip embeddings of an audio-visual encoder (CAV-MAE: L2-normalised mean-pooled audio / visual tokens).

    ```python
    extractor = pipeline("audio-visual-feature-extraction", model="path/to/cav-mae")
    out = extractor("clip.mp4")        # {"audio_embeds": np.ndarray [D], "visual_embeds": np.ndarray [D]}
    ```

    Call arguments:
        modality (`"audio-visual"`, `"audio"`, `"visual"` or `None`): which embeddings to compute (`"video"` is a
            deprecated name of `"visual"`).
        frames (`"all"`, `"middle"` or `int`, defaults to `"middle"`): frames used for the visual embedding (with
            several frames CAV-MAE pools over all their tokens).
        return_tokens (`bool`, defaults to False): also return the token features (`audio_tokens` `[L, D]`,
            `visual_tokens`).
        return_tensors (`bool`, defaults to False): torch tensors instead of numpy arrays.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_batchable()

    def _sanitize_parameters(self, modality=None, frames=None, return_tokens=None, return_tensors=None, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)} for audio-visual-feature-extraction")
        preprocess, forward, postprocess = {}, {}, {}
        if modality is not None:
            preprocess["modality"] = modality
        if frames is not None:
            preprocess["frames"] = frames
        if return_tokens is not None:
            forward["return_tokens"] = bool(return_tokens)
        if return_tensors is not None:
            postprocess["return_tensors"] = bool(return_tensors)
        return preprocess, forward, postprocess

    def preprocess(self, inputs, modality=None, frames="middle"):
        clip = self.prepare_clip(inputs, modality=modality, frames=frames)
        clip.pop("duration", None)
        return self._model_dtype_cast(clip)

    def _forward(self, model_inputs, return_tokens=False):
        return encode_modalities(self.model, model_inputs, return_tokens=return_tokens)

    def postprocess(self, model_outputs, return_tensors=False):
        result = {}
        for key, value in model_outputs.items():
            value = value[0]
            result[key] = value if return_tensors else value.float().numpy()
        return result

"""`audio-visual-segmentation`: a clip -> the sounding object's mask in each of its frames (DG-SCT on AVSBench).

```python
segmenter = pipeline("audio-visual-segmentation", model="path/to/dg-sct-avs")
result = segmenter("clip.mp4")
# {"image_size": (360, 640), "segments": [{"segment": 0, "start": 0.0, "end": 1.0, "label": "sounding object",
#   "mask": <PIL.Image mode L, 640 x 360>, "area": 0.12}, ...]}
```

The family processor gives the frames, the audio and each clip's frame size (`return_image_sizes=True`); the
mask logits are resized to that size and thresholded as AVSBench evaluates them (`sigmoid > 0.5`) by the image
processor's `post_process_masks`. `return_tensors=True` gives boolean `[H, W]` tensors instead of images.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Pipeline

from ..processing.base import describe_source
from .base import AudioVisualInputMixin

__all__ = ["AudioVisualSegmentationPipeline"]


class AudioVisualSegmentationPipeline(AudioVisualInputMixin, Pipeline):
    """Per-frame sounding-object masks at the clip's own frame size.

    Inputs: a media file (path, bytes, file object) or a dict of arrays / files (`{"audio": ..., "sampling_rate":
    ..., "frames": ...}`) as the other audio-visual pipelines.

    Call arguments:
        threshold (`float`, defaults to 0.5): a pixel belongs to the mask when `sigmoid(logit) > threshold`.
        return_tensors (`bool`, defaults to False): masks as boolean `[H, W]` tensors instead of PIL images
            (mode "L", 255 inside the mask).
        segment_duration (`float`, *optional*): seconds per frame's segment (default: clip duration / frames, else
            1.0).
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_batchable()

    def _sanitize_parameters(self, threshold=None, return_tensors=None, segment_duration=None, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)} for audio-visual-segmentation")
        postprocess = {}
        if threshold is not None:
            if not 0.0 <= float(threshold) < 1.0:
                raise ValueError(f"threshold must be in [0, 1), got {threshold!r}")
            postprocess["threshold"] = float(threshold)
        if return_tensors is not None:
            postprocess["return_tensors"] = bool(return_tensors)
        if segment_duration is not None:
            postprocess["segment_duration"] = float(segment_duration)
        return {}, {}, postprocess

    def preprocess(self, inputs):
        clip = self.prepare_clip(inputs, modality="audio-visual", frames="all", with_duration=True,
                                 processor_options={"return_image_sizes": True})
        if clip.get("input_values") is None or clip.get("pixel_values") is None:
            label = "<dict input>" if isinstance(inputs, dict) else describe_source(inputs)
            raise ValueError(f"{label}: {type(self.model).__name__} segments from audio AND frames; one is missing")
        duration = clip.pop("duration", None)
        image_sizes = clip.pop("image_sizes", None)
        if image_sizes is None:  # a processor without frame sizes: the frames as the model sees them
            image_sizes = torch.tensor([list(clip["pixel_values"].shape[-2:])])
        model_inputs = self._model_dtype_cast(clip)
        model_inputs["duration"] = torch.tensor([duration if duration else float("nan")], dtype=torch.float64)
        model_inputs["image_sizes"] = torch.as_tensor(image_sizes)
        return model_inputs

    def _forward(self, model_inputs):
        duration = model_inputs.pop("duration")
        image_sizes = model_inputs.pop("image_sizes")
        logits = self.model(**model_inputs).logits
        return {"logits": logits, "duration": duration, "image_sizes": image_sizes}

    def _post_process_masks(self, logits, target_sizes, threshold):
        image_processor = getattr(self._family_processor(), "image_processor", None)
        post_process = getattr(image_processor, "post_process_masks", None)
        if post_process is None:
            raise ValueError(
                f"{type(image_processor).__name__} has no post_process_masks; load the folder's "
                "DgSctSegmentationProcessor"
            )
        return post_process(logits, target_sizes=target_sizes, threshold=threshold)

    def postprocess(self, model_outputs, threshold=0.5, return_tensors=False, segment_duration=None):
        logits = model_outputs["logits"][:1].float()
        height, width = (int(v) for v in model_outputs["image_sizes"][0])
        masks = self._post_process_masks(logits, [(height, width)], threshold)[0]
        if segment_duration is None:
            duration = float(model_outputs["duration"][0])
            segment_duration = duration / masks.shape[0] if np.isfinite(duration) and duration > 0 else 1.0
        segments = []
        for t, mask in enumerate(masks):
            if not return_tensors:
                from PIL import Image

                mask_value = Image.fromarray(mask.numpy().astype(np.uint8) * 255)  # uint8 [H, W]: mode "L"
            else:
                mask_value = mask
            segments.append({
                "segment": t, "start": round(t * segment_duration, 6), "end": round((t + 1) * segment_duration, 6),
                "label": "sounding object", "mask": mask_value, "area": float(mask.float().mean()),
            })
        return {"image_size": (height, width), "segments": segments}

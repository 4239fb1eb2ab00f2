"""Auto classes for the audio-visual tasks Transformers has no Auto class for.

They behave like Transformers' own (`from_pretrained`, `from_config`, `register`). A family's row in
`hf_av.families` names them in its `models` mapping by class name (`HF_AV_AUTO_CLASSES` there lists them), and
`hf_av.registration` registers the head; `AutoModelForAudioVisualClassification.from_pretrained(D)` then loads any
family's clip classifier.
"""

from collections import OrderedDict

from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES


class AutoModelForAudioVisualClassification(_BaseAutoModelClass):
    """Clip-level audio-visual classification heads (e.g. `CavMaeForAudioVisualClassification`)."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


class AutoModelForAudioVisualEventLocalization(_BaseAutoModelClass):
    """Per-segment (per-second) event localization heads (LAVisH, DG-SCT)."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


class AutoModelForAudioVisualQuestionAnswering(_BaseAutoModelClass):
    """Audio-visual question answering heads: a clip and a question -> answer logits (DG-SCT on MUSIC-AVQA)."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


class AutoModelForAudioVisualSegmentation(_BaseAutoModelClass):
    """Audio-visual segmentation heads: a sounding-object mask per frame (DG-SCT on AVSBench)."""

    _model_mapping = _LazyAutoMapping(CONFIG_MAPPING_NAMES, OrderedDict())


__all__ = [
    "AutoModelForAudioVisualClassification",
    "AutoModelForAudioVisualEventLocalization",
    "AutoModelForAudioVisualQuestionAnswering",
    "AutoModelForAudioVisualSegmentation",
]

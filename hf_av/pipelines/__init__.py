"""Audio-visual pipelines, registered with Transformers' pipeline registry on `import hf_av`.

| task | class | model loaded by `pipeline(task, model=D)` (Auto classes of `hf_av.auto`) |
|---|---|---|
| `audio-visual-classification` | `AudioVisualClassificationPipeline` | the head the folder's config names (VATT's video or audio classifier), else `AutoModelForAudioVisualClassification` |
| `audio-visual-retrieval` | `AudioVisualRetrievalPipeline` | `AutoModel` (joint-space embeddings) |
| `audio-visual-event-localization` | `AudioVisualEventLocalizationPipeline` | `AutoModelForAudioVisualEventLocalization` (AVE heads; DG-SCT AVVP video parsing: per-modality timelines) |
| `audio-visual-question-answering` | `AudioVisualQuestionAnsweringPipeline` | `AutoModelForAudioVisualQuestionAnswering` |
| `audio-visual-segmentation` | `AudioVisualSegmentationPipeline` | `AutoModelForAudioVisualSegmentation` |
| `audio-visual-feature-extraction` | `AudioVisualFeatureExtractionPipeline` | `AutoModel` |
"""

from .audio_visual_classification import AudioVisualClassificationPipeline, ClipClassifierLoader
from .audio_visual_event_localization import (
    AudioVisualEventLocalizationPipeline,
    format_event_timeline,
    parse_video_events,
    segment_labels_from_logits,
    segments_to_events,
)
from .audio_visual_feature_extraction import AudioVisualFeatureExtractionPipeline
from .audio_visual_question_answering import AudioVisualQuestionAnsweringPipeline
from .audio_visual_retrieval import AudioVisualRetrievalPipeline
from .audio_visual_segmentation import AudioVisualSegmentationPipeline
from .base import MODALITIES
from .embeddings import encode_modalities

PIPELINE_TASKS = {
    "audio-visual-classification": (AudioVisualClassificationPipeline, "ClipClassifierLoader"),
    "audio-visual-retrieval": (AudioVisualRetrievalPipeline, "AutoModel"),
    "audio-visual-event-localization": (AudioVisualEventLocalizationPipeline, "AutoModelForAudioVisualEventLocalization"),
    "audio-visual-feature-extraction": (AudioVisualFeatureExtractionPipeline, "AutoModel"),
    "audio-visual-question-answering": (
        AudioVisualQuestionAnsweringPipeline, "AutoModelForAudioVisualQuestionAnswering"
    ),
    "audio-visual-segmentation": (AudioVisualSegmentationPipeline, "AutoModelForAudioVisualSegmentation"),
}


def register_pipelines() -> None:
    """Register the tasks above with `transformers.pipelines.PIPELINE_REGISTRY` (idempotent)."""
    from transformers import AutoModel
    from transformers.pipelines import PIPELINE_REGISTRY

    from ..auto import (
        AutoModelForAudioVisualClassification,
        AutoModelForAudioVisualEventLocalization,
        AutoModelForAudioVisualQuestionAnswering,
        AutoModelForAudioVisualSegmentation,
    )

    auto_classes = {
        "AutoModel": AutoModel,
        "ClipClassifierLoader": ClipClassifierLoader,
        "AutoModelForAudioVisualClassification": AutoModelForAudioVisualClassification,
        "AutoModelForAudioVisualEventLocalization": AutoModelForAudioVisualEventLocalization,
        "AutoModelForAudioVisualQuestionAnswering": AutoModelForAudioVisualQuestionAnswering,
        "AutoModelForAudioVisualSegmentation": AutoModelForAudioVisualSegmentation,
    }
    for task, (pipeline_class, auto_name) in PIPELINE_TASKS.items():
        existing = PIPELINE_REGISTRY.supported_tasks.get(task)
        if existing is not None and existing.get("impl") is pipeline_class:
            continue
        PIPELINE_REGISTRY.register_pipeline(
            task, pipeline_class=pipeline_class, pt_model=auto_classes[auto_name], type="multimodal"
        )


__all__ = [
    "MODALITIES",
    "PIPELINE_TASKS",
    "AudioVisualClassificationPipeline",
    "AudioVisualEventLocalizationPipeline",
    "AudioVisualFeatureExtractionPipeline",
    "AudioVisualQuestionAnsweringPipeline",
    "AudioVisualRetrievalPipeline",
    "AudioVisualSegmentationPipeline",
    "ClipClassifierLoader",
    "encode_modalities",
    "format_event_timeline",
    "parse_video_events",
    "register_pipelines",
    "segment_labels_from_logits",
    "segments_to_events",
]

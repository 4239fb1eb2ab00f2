"""Training data for audio-visual models: streaming sources, label encoding, collators, AV-Digits.

Streams are ``datasets.IterableDataset`` objects that decode and preprocess on the fly with a family
processor (``stream_from_manifest``, ``stream_from_folder``, ``stream_from_rows``,
``stream_from_hf_dataset``); ``split_by_node`` gives each distributed process its own shards, and
DataLoader workers split the shards further, so no sample is decoded or seen twice. Undecodable samples
follow a :class:`DecodeErrorPolicy`.

Resuming: ``state = ds.state_dict()`` after the last consumed example and ``ds.load_state_dict(state)`` on a
freshly built stream (same arguments) continue with the next sample, neither losing nor repeating any. With
``DataLoader(num_workers > 0)`` the state lives in the workers: use torchdata's ``StatefulDataLoader``
(``accelerate``'s ``use_stateful_dataloader=True``), which collects it from them, or re-iterate
deterministically (streams are deterministic given ``seed`` and epoch).

AV-Digits (``hf_av.data.av_digits.build_av_digits``) generates the embedded real benchmark, and
AV-Digits-Events (``hf_av.data.av_digits_events.build_av_digits_events``) its event-localisation variant.

DG-SCT's other tasks read the original datasets' layouts (``hf_av.data.dg_sct_tasks``): ``read_llp_annotations``
(AVVP), ``read_music_avqa_annotations`` (MUSIC-AVQA), ``read_avsbench_s4_annotations`` (AVSBench S4), their decoders
and ``DgSctTaskCollator``.
"""

from .augment import AudioVisualAugmentation
from .collate import AudioVisualCollator, collator_for_model
from .errors import DecodeErrorPolicy, TooManyDecodingErrors, read_error_report
from .labels import LabelEncoder
from .stream import (
    VIDEO_EXTENSIONS,
    read_manifest,
    scan_folder,
    split_by_node,
    stream_from_folder,
    stream_from_hf_dataset,
    stream_from_manifest,
    stream_from_rows,
    stream_label_names,
)

_DG_SCT_TASK_NAMES = (
    "AnnotationError",
    "DgSctQuestionAnsweringDecoder",
    "DgSctSegmentationDecoder",
    "DgSctTaskCollator",
    "DgSctVideoParsingDecoder",
    "read_avsbench_s4_annotations",
    "read_llp_annotations",
    "read_music_avqa_annotations",
)

__all__ = [
    *_DG_SCT_TASK_NAMES,
    "AudioVisualAugmentation",
    "AudioVisualCollator",
    "DecodeErrorPolicy",
    "LabelEncoder",
    "MissingToolError",
    "TooManyDecodingErrors",
    "VIDEO_EXTENSIONS",
    "build_av_digits",
    "build_av_digits_events",
    "collator_for_model",
    "read_error_report",
    "read_manifest",
    "scan_folder",
    "split_by_node",
    "stream_from_folder",
    "stream_from_hf_dataset",
    "stream_from_manifest",
    "stream_from_rows",
    "stream_label_names",
]


def __getattr__(name):  # AV-Digits on first use, so `python -m hf_av.data.av_digits` imports it only once
    if name in ("build_av_digits", "MissingToolError"):
        from . import av_digits

        return getattr(av_digits, name)
    if name == "build_av_digits_events":
        from . import av_digits_events

        return av_digits_events.build_av_digits_events
    if name in _DG_SCT_TASK_NAMES:
        from . import dg_sct_tasks

        return getattr(dg_sct_tasks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

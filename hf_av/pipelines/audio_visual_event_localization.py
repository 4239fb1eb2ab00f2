"""`audio-visual-event-localization`: a clip -> one label per segment (AVE: ten 1-second segments) and events.

The post-processing is model-agnostic and lives in :func:`segment_labels_from_logits` / :func:`segments_to_events`.
It understands the two output layouts of AVE-style heads:

* per-segment class logits `logits` `[B, T, C]` (the background class, if any, is one of the `C` labels);
* the supervised-AVE layout `is_event_logits` `[B, T]` (or `[B, T, 1]`) + `event_logits` `[B, C]` (one event class
  per video): a segment is the video's event class when `sigmoid(is_event) > threshold`, background otherwise.

LAVisH returns the first layout (29 AVE classes per segment, background one of them), DG-SCT the second (its
`logits` are the video-level event logits, background excluded; the background is its config's `background_id`).

Video parsing heads (DG-SCT AVVP on LLP: `global_probs` `[B, C]` and per-modality `audio_frame_probs` /
`visual_frame_probs` `[B, T, C]`) give multi-label timelines per modality, as the original evaluation reads them
(:func:`parse_video_events`): the video-level events are the classes with `global_probs >= threshold`; a segment
has an audio (visual) event of such a class when its frame probability is `>= threshold`, and an audio-visual
event when it has both.

The models take both modalities: a clip without an audio track (or without frames) is refused up front, naming
the file and what it lacks. :func:`format_event_timeline` renders a result as one line per segment (per modality
for video parsing).
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Pipeline

from ..errors import MediaDecodingError
from ..processing.base import describe_source
from .base import AudioVisualInputMixin

__all__ = [
    "AudioVisualEventLocalizationPipeline",
    "PARSING_MODALITIES",
    "format_event_timeline",
    "parse_video_events",
    "segment_labels_from_logits",
    "segments_to_events",
]

BACKGROUND_NAMES = ("background", "bg", "none", "other")
PARSING_MODALITIES = ("audio", "visual", "audio-visual")
_PARSING_OUTPUTS = ("global_probs", "audio_frame_probs", "visual_frame_probs")


def _background_id(id2label: dict, background_label: str | None, default: int | None = None) -> int | None:
    """The background class: the one named `background_label`, else one named like "background", else `default`
    (a config's structural `background_id`, e.g. DG-SCT's last label)."""
    names = (background_label.lower(),) if background_label else BACKGROUND_NAMES
    for index, name in id2label.items():
        if str(name).lower() in names:
            return int(index)
    if background_label:
        raise ValueError(f"background_label {background_label!r} is not a label of the model ({sorted(map(str, id2label.values()))})")
    return default


def segment_labels_from_logits(
    id2label: dict,
    logits: torch.Tensor | np.ndarray | None = None,
    is_event_logits: torch.Tensor | np.ndarray | None = None,
    event_logits: torch.Tensor | np.ndarray | None = None,
    threshold: float = 0.5,
    background_label: str | None = None,
    multi_label: bool = False,
    background_id: int | None = None,
) -> list[dict]:
    """Per-segment predictions of ONE clip: `[{"segment": t, "label": str, "label_id": int, "score": float}]`.

    Args:
        id2label: class names; the background class is found by name (`background_label`, else "background").
        logits (`[T, C]`): per-segment class logits (softmax per segment, or sigmoid with `multi_label`).
        is_event_logits (`[T]` or `[T, 1]`) and event_logits (`[C]`): the supervised-AVE layout.
        threshold: event probability threshold of the supervised layout (and of `multi_label` scores).
        background_id: the background class when no label is named like one (e.g. `config.background_id`).
    """
    id2label = {int(k): v for k, v in id2label.items()}
    background = _background_id(id2label, background_label, background_id)
    if logits is not None:
        logits = torch.as_tensor(np.asarray(logits) if not isinstance(logits, torch.Tensor) else logits).float()
        if logits.ndim != 2:
            raise ValueError(f"logits must be [segments, classes], got shape {tuple(logits.shape)}")
        probabilities = logits.sigmoid() if multi_label else logits.softmax(-1)
        scores, ids = probabilities.max(-1)
        segments = []
        for t, (score, label_id) in enumerate(zip(scores.tolist(), ids.tolist())):
            if multi_label and score < threshold and background is not None:
                label_id, score = background, 1.0 - score
            segments.append({"segment": t, "label": id2label.get(label_id, str(label_id)), "label_id": label_id, "score": score})
        return segments
    if is_event_logits is None or event_logits is None:
        raise ValueError("pass logits [T, C], or is_event_logits [T] together with event_logits [C]")
    is_event = torch.as_tensor(np.asarray(is_event_logits)).float().reshape(-1).sigmoid()
    event_probabilities = torch.as_tensor(np.asarray(event_logits)).float().reshape(-1).softmax(-1)
    if background is not None and event_probabilities.shape[0] == len(id2label):
        event_probabilities[background] = -1.0  # the video's event class is never the background
    event_score, event_id = event_probabilities.max(-1)
    segments = []
    for t, p in enumerate(is_event.tolist()):
        if p > threshold:
            segments.append({"segment": t, "label": id2label.get(int(event_id), str(int(event_id))),
                             "label_id": int(event_id), "score": p * float(event_score)})
        else:
            label_id = background if background is not None else -1
            segments.append({"segment": t, "label": id2label.get(label_id, "background"), "label_id": label_id,
                             "score": 1.0 - p})
    return segments


def segments_to_events(
    segments: list[dict], segment_duration: float = 1.0, background_id: int | None = None, keep_background: bool = False
) -> list[dict]:
    """Merge runs of equal labels into events `{"label", "start", "end", "score"}` (seconds; mean segment score)."""
    events: list[dict] = []
    for segment in segments:
        if not keep_background and (segment["label_id"] == background_id or segment["label_id"] == -1):
            events.append(None)  # a background segment ends the current run
            continue
        last = events[-1] if events else None
        if last is not None and last["label_id"] == segment["label_id"]:
            last["end"] = round((segment["segment"] + 1) * segment_duration, 6)
            last["_scores"].append(segment["score"])
        else:
            events.append({
                "label": segment["label"], "label_id": segment["label_id"],
                "start": round(segment["segment"] * segment_duration, 6),
                "end": round((segment["segment"] + 1) * segment_duration, 6), "_scores": [segment["score"]],
            })
    result = []
    for event in events:
        if event is None:
            continue
        scores = event.pop("_scores")
        event["score"] = float(sum(scores) / len(scores))
        result.append(event)
    return result


def _as_float_tensor(value) -> torch.Tensor:
    return (value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))).detach().float().cpu()


def _class_runs(active: torch.Tensor, scores: torch.Tensor, id2label: dict, segment_duration: float) -> list[dict]:
    """Events `{"label", "label_id", "start", "end", "score"}` from runs of consecutive active segments of each class
    (`active`, `scores` `[T, C]`), ordered by start then class."""
    events = []
    num_segments = active.shape[0]
    for label_id in range(active.shape[1]):
        start = None
        for t in range(num_segments + 1):
            on = t < num_segments and bool(active[t, label_id])
            if on and start is None:
                start = t
            elif not on and start is not None:
                events.append({
                    "label": id2label.get(label_id, str(label_id)), "label_id": label_id,
                    "start": round(start * segment_duration, 6), "end": round(t * segment_duration, 6),
                    "score": float(scores[start:t, label_id].mean()),
                })
                start = None
    return sorted(events, key=lambda event: (event["start"], event["label_id"]))


def parse_video_events(
    id2label: dict,
    global_probs,
    audio_frame_probs,
    visual_frame_probs,
    threshold: float = 0.5,
    segment_duration: float = 1.0,
) -> dict:
    """Audio, visual and audio-visual timelines of ONE clip from a video parsing head (DG-SCT AVVP), read as the
    original LLP evaluation does (`AVVP/main.py` `eval`): a class is in the video when `global_probs >= threshold`;
    a segment has the class's audio (visual) event when its frame probability is also `>= threshold`; an
    audio-visual event needs both.

    Args:
        id2label: class names.
        global_probs (`[C]`): video-level audio-visual event probabilities.
        audio_frame_probs, visual_frame_probs (`[T, C]`): per-segment probabilities of each modality.

    Returns:
        `{"video_labels": [{"label", "label_id", "score"}] (by score), "audio" / "visual" / "audio-visual":
        {"segments": [...], "events": [...]}}`. A segment is `{"segment", "start", "end", "labels", "label_ids",
        "scores", "label", "score"}` (`label` joins the names, "none" for a segment without events; `score` is the
        highest of `scores`, None without events); the audio-visual score of a class is the smaller of its two frame
        probabilities. Events are runs of consecutive segments of one class, scored by their mean segment score.
    """
    id2label = {int(k): v for k, v in id2label.items()}
    video_probs = _as_float_tensor(global_probs).reshape(-1)
    audio = _as_float_tensor(audio_frame_probs)
    visual = _as_float_tensor(visual_frame_probs)
    if audio.ndim != 2 or audio.shape != visual.shape or audio.shape[1] != video_probs.shape[0]:
        raise ValueError(
            "audio_frame_probs and visual_frame_probs must be [segments, classes] with the classes of global_probs "
            f"({video_probs.shape[0]}), got {tuple(audio.shape)} and {tuple(visual.shape)}."
        )
    in_video = video_probs >= threshold
    audio_on = (audio >= threshold) & in_video
    visual_on = (visual >= threshold) & in_video
    timelines = {
        "audio": (audio_on, audio),
        "visual": (visual_on, visual),
        "audio-visual": (audio_on & visual_on, torch.minimum(audio, visual)),
    }
    result = {
        "video_labels": sorted(
            ({"label": id2label.get(i, str(i)), "label_id": i, "score": float(video_probs[i])}
             for i in in_video.nonzero().flatten().tolist()),
            key=lambda entry: -entry["score"],
        )
    }
    for modality, (active, scores) in timelines.items():
        segments = []
        for t in range(active.shape[0]):
            ids = active[t].nonzero().flatten().tolist()
            ids.sort(key=lambda i: -float(scores[t, i]))
            values = [float(scores[t, i]) for i in ids]
            names = [id2label.get(i, str(i)) for i in ids]
            segments.append({
                "segment": t, "start": round(t * segment_duration, 6), "end": round((t + 1) * segment_duration, 6),
                "labels": names, "label_ids": ids, "scores": values,
                "label": ", ".join(names) if names else "none", "score": values[0] if values else None,
            })
        result[modality] = {"segments": segments, "events": _class_runs(active, scores, id2label, segment_duration)}
    return result


class AudioVisualEventLocalizationPipeline(AudioVisualInputMixin, Pipeline):
    """Per-second audio-visual event labels (LAVisH, DG-SCT on AVE) -- generic over the head's output layout.

    ```python
    localizer = pipeline("audio-visual-event-localization", model="path/to/lavish-ave")
    localizer("clip.mp4")
    # {"segments": [{"segment": 0, "start": 0.0, "end": 1.0, "label": "Dog", "score": 0.9}, ...],
    #  "events": [{"label": "Dog", "start": 0.0, "end": 4.0, "score": 0.88}, ...]}
    ```

    Video parsing heads (DG-SCT AVVP) give per-modality timelines (:func:`parse_video_events`):

    ```python
    parser = pipeline("audio-visual-event-localization", model="path/to/dg-sct-avvp")
    result = parser("clip.mp4", clip_features="feats/r2plus1d_18/clip.npy")  # the original needs R(2+1)D features
    result["audio"]["events"], result["visual"]["events"], result["audio-visual"]["events"], result["video_labels"]
    print(format_event_timeline(result))  # one block per modality
    ```
    (`result["segments"]` / `result["events"]` are the audio-visual ones.)

    Call arguments:
        threshold (`float`, defaults to 0.5): event threshold of the supervised layout / multi-label scores (video
            parsing: of the video-level and the frame-level probabilities).
        clip_features (array or `.npy` path, *optional*): the precomputed 3-D CNN features of the clip's segments a
            video parsing model built with `clip_feature_size` needs (`[num_segments, clip_feature_size]`).
        background_label (`str`, *optional*): name of the background class (default: a label named "background").
        segment_duration (`float`, *optional*): seconds per segment (default: clip duration / segments, else 1.0).
        keep_background (`bool`, defaults to False): also list background runs in `events`.
    """

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._ensure_batchable()

    def _sanitize_parameters(self, threshold=None, background_label=None, segment_duration=None, keep_background=None,
                             modality=None, clip_features=None, **kwargs):
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)} for audio-visual-event-localization")
        preprocess, postprocess = {}, {}
        if modality is not None:
            preprocess["modality"] = modality
        if clip_features is not None:
            preprocess["clip_features"] = clip_features
        for name, value in (("threshold", threshold), ("background_label", background_label),
                            ("segment_duration", segment_duration), ("keep_background", keep_background)):
            if value is not None:
                postprocess[name] = value
        return preprocess, {}, postprocess

    def _clip_feature_options(self, clip_features) -> dict:
        """The processor option carrying a video parsing model's clip features; a clear error when the model's
        config needs them and none were given (or they were given to a model that takes none)."""
        config = self.model.config
        if not hasattr(config, "clip_feature_size"):
            if clip_features is not None:
                raise ValueError(f"clip_features are for video parsing models; {type(self.model).__name__} takes none")
            return {}
        needed = config.clip_feature_size
        if clip_features is None and needed is not None:
            raise ValueError(
                f"{type(self.model).__name__} (config.clip_feature_size={needed}, the original MGN_Net) fuses "
                "precomputed 3-D CNN clip features: pass clip_features= (an array of shape "
                f"[{config.num_segments}, {needed}], or the path of the clip's R(2+1)D-18 .npy of the LLP layout, "
                "feats/r2plus1d_18/<video>.npy). hf_av does not extract them; a model built with "
                "clip_feature_size=None parses from the video alone."
            )
        if clip_features is None:
            return {}
        if needed is None:
            raise ValueError(
                f"clip_features were given, but {type(self.model).__name__} has no clip-feature fusion "
                "(config.clip_feature_size is None); leave them out."
            )
        if "clip_features" not in getattr(self._family_processor(), "call_options", ()):
            raise ValueError(
                f"{type(self._family_processor()).__name__} does not take clip_features; load the folder's "
                "DgSctVideoParsingProcessor (hf_av.processing.dg_sct_tasks)"
            )
        return {"clip_features": clip_features}

    def preprocess(self, inputs, modality=None, clip_features=None):
        options = self._clip_feature_options(clip_features)
        clip = self.prepare_clip(inputs, modality=modality, frames="all", with_duration=True,
                                 processor_options=options)
        self._check_both_modalities(inputs, clip)
        duration = clip.pop("duration", None)
        model_inputs = self._model_dtype_cast(clip)
        model_inputs["duration"] = torch.tensor([duration if duration else float("nan")], dtype=torch.float64)
        return model_inputs

    def _check_both_modalities(self, inputs, clip) -> None:
        """The event heads fuse audio and frames segment by segment: a clip lacking one is refused here, naming the
        input, what the model needs and what was found (instead of the model's generic missing-argument error)."""
        needed = {"audio": "input_values", "visual": "pixel_values"}
        if not set(needed) <= set(self._model_modalities()):
            return
        missing = [modality for modality, key in needed.items() if clip.get(key) is None]
        if missing:
            found = [modality for modality in needed if modality not in missing]
            label = "<dict input>" if isinstance(inputs, dict) else describe_source(inputs)
            what = "no audio track" if missing == ["audio"] else "no video frames" if missing == ["visual"] else "nothing"
            raise MediaDecodingError(
                f"{label}: {what} decoded; {type(self.model).__name__} localises events from audio AND visual input "
                f"(one frame and one second of audio per segment), found only: {', '.join(found) or 'nothing'}"
            )

    def _forward(self, model_inputs):
        duration = model_inputs.pop("duration")
        outputs = self.model(**model_inputs)
        result = {"duration": duration}
        if all(getattr(outputs, name, None) is not None for name in _PARSING_OUTPUTS):
            return {**result, **{name: getattr(outputs, name) for name in _PARSING_OUTPUTS}}
        for name in ("logits", "is_event_logits", "event_logits"):
            value = getattr(outputs, name, None)
            if value is not None:
                result[name] = value
        if "logits" in result and result["logits"].ndim == 2 and "is_event_logits" in result:
            result["event_logits"] = result.pop("logits")  # the head's video-level class logits
        if "logits" not in result and "is_event_logits" not in result:
            raise ValueError(f"{type(self.model).__name__} returns neither segment logits nor is_event/event logits")
        return result

    def postprocess(self, model_outputs, threshold=0.5, background_label=None, segment_duration=None,
                    keep_background=False):
        config = self.model.config
        if "global_probs" in model_outputs:
            return self._postprocess_parsing(model_outputs, threshold, segment_duration)
        segments = segment_labels_from_logits(
            config.id2label,
            logits=model_outputs["logits"][0] if "logits" in model_outputs else None,
            is_event_logits=model_outputs["is_event_logits"][0] if "is_event_logits" in model_outputs else None,
            event_logits=model_outputs["event_logits"][0] if "event_logits" in model_outputs else None,
            threshold=threshold,
            background_label=background_label,
            multi_label=config.problem_type == "multi_label_classification",
            background_id=getattr(config, "background_id", None),
        )
        if segment_duration is None:
            duration = float(model_outputs["duration"][0])
            segment_duration = duration / len(segments) if np.isfinite(duration) and duration > 0 else 1.0
        for segment in segments:
            segment["start"] = round(segment["segment"] * segment_duration, 6)
            segment["end"] = round((segment["segment"] + 1) * segment_duration, 6)
        background = _background_id({int(k): v for k, v in config.id2label.items()}, background_label,
                                    getattr(config, "background_id", None))
        events = segments_to_events(segments, segment_duration, background, keep_background)
        return {"segments": segments, "events": events}


    def _postprocess_parsing(self, model_outputs, threshold, segment_duration):
        num_segments = model_outputs["audio_frame_probs"].shape[1]
        if segment_duration is None:
            duration = float(model_outputs["duration"][0])
            segment_duration = duration / num_segments if np.isfinite(duration) and duration > 0 else 1.0
        result = parse_video_events(
            self.model.config.id2label,
            model_outputs["global_probs"][0],
            model_outputs["audio_frame_probs"][0],
            model_outputs["visual_frame_probs"][0],
            threshold=threshold,
            segment_duration=segment_duration,
        )
        # the generic keys hold the audio-visual timeline
        return {**result, "segments": result["audio-visual"]["segments"], "events": result["audio-visual"]["events"]}


def format_event_timeline(result: dict) -> str:
    """The per-segment timeline of a pipeline result, one line per segment (`"  0.00-  1.00s  Dog  (0.912)"`),
    then the merged events. A video parsing result (:func:`parse_video_events`) gives one such block per modality
    ("audio", "visual", "audio-visual"), after its video-level labels."""
    if all(modality in result for modality in PARSING_MODALITIES):
        labels = ", ".join(f"{entry['label']} ({entry['score']:.3f})" for entry in result.get("video_labels", []))
        blocks = [f"video: {labels or 'none'}"]
        for modality in PARSING_MODALITIES:
            blocks.append(f"{modality}:\n" + format_event_timeline(result[modality]))
        return "\n".join(blocks)
    lines = [
        f"{segment['start']:6.2f}-{segment['end']:6.2f}s  {segment['label']}"
        + (f"  ({segment['score']:.3f})" if segment.get("score") is not None else "")
        for segment in result["segments"]
    ]
    lines.append("events: " + ("; ".join(
        f"{event['label']} {event['start']:.2f}-{event['end']:.2f}s ({event['score']:.3f})" for event in result["events"]
    ) or "none"))
    return "\n".join(lines)

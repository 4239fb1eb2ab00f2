"""Pipelines of DG-SCT's other tasks on tiny random-weight folders and real clips written with PyAV:

* AVVP through `audio-visual-event-localization`: per-modality timelines read as the original LLP evaluation
  (`AVVP/main.py` `eval`: frame probability >= 0.5 AND video-level probability >= 0.5; audio-visual = both);
* `audio-visual-question-answering`: top-k answers from the clip and a question tokenised by the processor;
* `audio-visual-segmentation`: per-frame masks at the clip's own frame size (sigmoid > threshold, as AVSBench).

Every expected value comes from the model run on the family processor's tensors of the same file."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F
from transformers import pipeline
from transformers.pipelines import PIPELINE_REGISTRY

import hf_av  # noqa: F401  (registers the task configs, heads and pipelines)
from hf_av.pipelines import (
    AudioVisualEventLocalizationPipeline,
    AudioVisualQuestionAnsweringPipeline,
    AudioVisualSegmentationPipeline,
    format_event_timeline,
    parse_video_events,
)
from tests.media_factory import write_av

from ._dg_sct_task_models import ANSWERS, PARSING_LABELS, SEGMENTS, save_tiny_task_model
from ._helpers import write_clip

QUESTION = "How many instruments are sounding in the video?"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("dg_sct_task_clips")
    return {
        "clip": write_clip(root / "clip.mp4", seconds=3.0, fps=8, size=48),
        # a wide clip (64 x 48) for the masks' image size
        "wide": write_av(root / "wide.mp4", fps=8, num_frames=24, width=64, height=48, rate=16000, layout="mono").path,
        "silent": write_clip(root / "silent.mp4", seconds=3.0, fps=8, size=48, with_audio=False),
    }


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("dg_sct_task_models")
    return {task: save_tiny_task_model(root / task, task) for task in ("avvp", "avqa", "avs")}


@pytest.fixture(scope="module")
def clip_features():
    return np.random.default_rng(0).standard_normal((SEGMENTS, 6)).astype(np.float32)


def test_task_pipelines_are_registered_with_their_auto_classes():
    tasks = PIPELINE_REGISTRY.supported_tasks
    assert tasks["audio-visual-question-answering"]["impl"] is AudioVisualQuestionAnsweringPipeline
    assert tasks["audio-visual-segmentation"]["impl"] is AudioVisualSegmentationPipeline
    assert tasks["audio-visual-question-answering"]["pt"][0].__name__ == "AutoModelForAudioVisualQuestionAnswering"
    assert tasks["audio-visual-segmentation"]["pt"][0].__name__ == "AutoModelForAudioVisualSegmentation"


# ---- AVVP -----------------------------------------------------------------------------------------------------------
def _original_llp_predictions(global_probs, frame_probs):
    """`AVVP/main.py` eval, restated: `(frame >= 0.5) * repeat(global >= 0.5)` -> [T, C] 0/1."""
    video = (global_probs.numpy() >= 0.5).astype(np.int_)
    return (frame_probs.numpy() >= 0.5).astype(np.int_) * np.repeat(video[None], frame_probs.shape[0], axis=0)


def test_video_parsing_gives_the_original_evaluation_timelines_per_modality(folders, clips, clip_features):
    parser = pipeline("audio-visual-event-localization", model=str(folders["avvp"]))
    assert isinstance(parser, AudioVisualEventLocalizationPipeline)
    assert type(parser.model).__name__ == "DgSctForAudioVisualVideoParsing"
    assert type(parser.processor).__name__ == "DgSctVideoParsingProcessor"
    result = parser(str(clips["clip"]), clip_features=clip_features)

    inputs = parser.processor(videos=str(clips["clip"]), clip_features=clip_features, return_tensors="pt")
    assert torch.equal(inputs["clip_features"][0], torch.from_numpy(clip_features))
    with torch.no_grad():
        reference = parser.model(**inputs)
    audio = _original_llp_predictions(reference.global_probs[0], reference.audio_frame_probs[0])
    visual = _original_llp_predictions(reference.global_probs[0], reference.visual_frame_probs[0])
    expected = {"audio": audio, "visual": visual, "audio-visual": audio * visual}
    for modality, predictions in expected.items():
        segments = result[modality]["segments"]
        assert [(s["start"], s["end"]) for s in segments] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
        assert [sorted(s["label_ids"]) for s in segments] == [np.flatnonzero(row).tolist() for row in predictions]
        assert all(s["labels"] == [PARSING_LABELS[i] for i in s["label_ids"]] for s in segments)
    video_ids = (reference.global_probs[0] >= 0.5).nonzero().flatten().tolist()
    assert sorted(entry["label_id"] for entry in result["video_labels"]) == video_ids
    assert result["segments"] == result["audio-visual"]["segments"]

    timeline = format_event_timeline(result)
    assert timeline.startswith("video: ") and "\naudio:\n" in timeline and "\naudio-visual:\n" in timeline


def test_video_parsing_reads_the_llp_npy_layout(folders, clips, clip_features, tmp_path):
    parser = pipeline("audio-visual-event-localization", model=str(folders["avvp"]))
    path = tmp_path / "feats" / "r2plus1d_18" / "clip.npy"
    path.parent.mkdir(parents=True)
    np.save(path, clip_features)
    from_file = parser(str(clips["clip"]), clip_features=str(path))
    assert from_file == parser(str(clips["clip"]), clip_features=clip_features)


def test_video_parsing_without_clip_features_is_a_clear_error_unless_the_config_takes_none(
    folders, clips, clip_features, tmp_path
):
    parser = pipeline("audio-visual-event-localization", model=str(folders["avvp"]))
    with pytest.raises(ValueError, match=r"clip_feature_size=6.*pass clip_features= .*\[3, 6\].*"
                                         r"clip_feature_size=None parses from the video alone"):
        parser(str(clips["clip"]))
    with pytest.raises(ValueError, match=r"clip_features: expected one feature vector per segment, shape \[3, "
                                         r"width\].*got \(2, 6\)"):
        parser(str(clips["clip"]), clip_features=clip_features[:2])

    video_only = pipeline("audio-visual-event-localization",
                          model=str(save_tiny_task_model(tmp_path / "avvp-video", "avvp", clip_feature_size=None)))
    assert not hasattr(video_only.model.parsing_head, "clip_projection")
    result = video_only(str(clips["clip"]))
    assert len(result["audio"]["segments"]) == SEGMENTS
    with pytest.raises(ValueError, match="no clip-feature fusion"):
        video_only(str(clips["clip"]), clip_features=clip_features)


def test_video_parsing_needs_both_modalities(folders, clips, clip_features):
    parser = pipeline("audio-visual-event-localization", model=str(folders["avvp"]))
    with pytest.raises(ValueError, match=r"silent\.mp4: no audio"):
        parser(str(clips["silent"]), clip_features=clip_features)


def test_parse_video_events_on_given_probabilities():
    labels = {0: "Speech", 1: "Dog", 2: "Car"}
    global_probs = torch.tensor([0.9, 0.8, 0.2])  # Car is not in the video
    audio = torch.tensor([[0.7, 0.1, 0.9], [0.6, 0.6, 0.9], [0.2, 0.7, 0.9], [0.8, 0.7, 0.9]])
    visual = torch.tensor([[0.1, 0.1, 0.9], [0.9, 0.4, 0.9], [0.7, 0.9, 0.9], [0.1, 0.8, 0.9]])
    result = parse_video_events(labels, global_probs, audio, visual, segment_duration=2.5)
    assert [entry["label"] for entry in result["video_labels"]] == ["Speech", "Dog"]
    assert [s["labels"] for s in result["audio"]["segments"]] == [["Speech"], ["Speech", "Dog"], ["Dog"],
                                                                  ["Speech", "Dog"]]
    assert [s["label_ids"] for s in result["audio-visual"]["segments"]] == [[], [0], [1], [1]]
    assert result["audio-visual"]["segments"][0]["label"] == "none" and result["audio-visual"]["segments"][0]["score"] is None
    events = [(e["label"], e["start"], e["end"]) for e in result["audio"]["events"]]
    assert events == [("Speech", 0.0, 5.0), ("Dog", 2.5, 10.0), ("Speech", 7.5, 10.0)]
    av_dog = [e for e in result["audio-visual"]["events"] if e["label"] == "Dog"]
    assert av_dog == [{"label": "Dog", "label_id": 1, "start": 5.0, "end": 10.0, "score": pytest.approx(0.7)}]
    with pytest.raises(ValueError, match="must be \\[segments, classes\\]"):
        parse_video_events(labels, global_probs, audio, visual[:, :2])


# ---- AVQA -----------------------------------------------------------------------------------------------------------
def test_question_answering_returns_the_top_answers(folders, clips):
    answerer = pipeline("audio-visual-question-answering", model=str(folders["avqa"]))
    assert isinstance(answerer, AudioVisualQuestionAnsweringPipeline)
    assert type(answerer.model).__name__ == "DgSctForAudioVisualQuestionAnswering"
    answers = answerer(str(clips["clip"]), question=QUESTION, top_k=3)

    inputs = answerer.processor(videos=str(clips["clip"]), text=QUESTION, return_tensors="pt")
    with torch.no_grad():
        probabilities = answerer.model(**inputs).logits[0].softmax(-1)
    top = probabilities.topk(3)
    assert [a["answer_id"] for a in answers] == top.indices.tolist()
    assert [a["score"] for a in answers] == pytest.approx(top.values.tolist(), abs=1e-6)
    assert [a["answer"] for a in answers] == [ANSWERS[i] for i in top.indices.tolist()]
    # the question as the second argument, or inside a dict input
    assert answerer(str(clips["clip"]), QUESTION, top_k=3) == answers
    assert answerer({"frames": str(clips["clip"]), "audio": str(clips["clip"]), "question": QUESTION}, top_k=3) == answers
    assert len(answerer(str(clips["clip"]), question=QUESTION)) == 5  # default top_k, all five answers here


def test_question_templates_and_bad_questions(folders, clips):
    answerer = pipeline("audio-visual-question-answering", model=str(folders["avqa"]))
    filled = answerer(str(clips["clip"]), question="Is the <Object> always playing?", templ_values="['piano']")
    assert filled == answerer(str(clips["clip"]), question="Is the piano always playing?")
    with pytest.raises(ValueError, match=r"template slots \['<Object>'\]; pass their values with templ_values="):
        answerer(str(clips["clip"]), question="Is the <Object> always playing?")
    with pytest.raises(ValueError, match="needs a question"):
        answerer(str(clips["clip"]))
    with pytest.raises(ValueError, match="The question has 10 words; the model takes at most 8"):
        answerer(str(clips["clip"]), question="How many many many instruments are sounding in the video?")
    with pytest.raises(ValueError, match="'cello' is not in the question vocabulary"):
        answerer(str(clips["clip"]), question="Is the cello always playing?")
    with pytest.raises(ValueError, match=r"silent\.mp4: no audio"):
        answerer(str(clips["silent"]), question=QUESTION)


# ---- AVS ------------------------------------------------------------------------------------------------------------
def test_segmentation_masks_come_at_the_clips_frame_size(folders, clips):
    segmenter = pipeline("audio-visual-segmentation", model=str(folders["avs"]))
    assert isinstance(segmenter, AudioVisualSegmentationPipeline)
    assert type(segmenter.model).__name__ == "DgSctForAudioVisualSegmentation"
    inputs = segmenter.processor(videos=str(clips["wide"]), return_image_sizes=True, return_tensors="pt")
    assert inputs.pop("image_sizes").tolist() == [[48, 64]]
    with torch.no_grad():
        logits = segmenter.model(**inputs).logits
    # a threshold that splits the (random) model's pixels, so the masks are not trivially empty
    threshold = float(logits.sigmoid().median())
    expected = F.interpolate(logits[:1], size=(48, 64), mode="bilinear", align_corners=False)[0].sigmoid() > threshold

    result = segmenter(str(clips["wide"]), threshold=threshold)
    segments = result["segments"]
    assert result["image_size"] == (48, 64) and len(segments) == SEGMENTS
    assert [(s["start"], s["end"]) for s in segments] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    for segment, mask in zip(segments, expected):
        assert segment["mask"].mode == "L" and segment["mask"].size == (64, 48)
        assert np.array_equal(np.asarray(segment["mask"]) > 0, mask.numpy())
        assert segment["area"] == pytest.approx(mask.float().mean().item())
    assert 0.0 < sum(s["area"] for s in segments) < SEGMENTS

    tensors = segmenter(str(clips["wide"]), threshold=threshold, return_tensors=True)["segments"]
    assert all(torch.equal(s["mask"], mask) for s, mask in zip(tensors, expected))
    with pytest.raises(ValueError, match=r"threshold must be in \[0, 1\)"):
        segmenter(str(clips["wide"]), threshold=1.5)


def test_segmentation_of_frame_arrays_uses_their_size(folders):
    segmenter = pipeline("audio-visual-segmentation", model=str(folders["avs"]))
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (SEGMENTS, 30, 40, 3), dtype=np.uint8)
    audio = rng.standard_normal(8000 * SEGMENTS).astype(np.float32) * 0.1
    result = segmenter({"frames": frames, "audio": audio, "sampling_rate": 8000}, return_tensors=True)
    assert result["image_size"] == (30, 40)
    assert all(s["mask"].shape == (30, 40) and s["mask"].dtype == torch.bool for s in result["segments"])


def test_question_answering_without_a_question_tokenizer_says_how_to_get_one(folders, clips, tmp_path):
    from hf_av.processing.dg_sct import DgSctProcessor

    answerer = pipeline("audio-visual-question-answering", model=str(folders["avqa"]))
    plain = DgSctProcessor(answerer.processor.feature_extractor, answerer.processor.image_processor)
    without = pipeline("audio-visual-question-answering", model=answerer.model, processor=plain)
    with pytest.raises(ValueError, match=r"DgSctProcessor has no question tokenizer.*--question-json"):
        without(str(clips["clip"]), question=QUESTION)

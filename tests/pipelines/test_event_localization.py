"""`pipeline("audio-visual-event-localization")` on converted and saved LAVisH / DG-SCT folders and real video
files: the family processor is the one path from the file to tensors, and the result is the per-segment timeline."""

import shutil

import pytest
import torch
from transformers import pipeline

import hf_av
from hf_av.conversion.lavish import convert_lavish_checkpoint
from hf_av.errors import MediaDecodingError
from hf_av.pipelines import AudioVisualEventLocalizationPipeline, format_event_timeline

from ._event_localization_models import EVENT_LABELS, SEGMENTS, save_tiny_event_model
from ._helpers import write_clip

LAVISH_FIXTURE = "tests/fixtures/lavish/lavish_ave_tiny.pth"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("event_clips")
    return {
        "clip": write_clip(root / "clip.mp4", seconds=3.0, fps=8, size=48),
        "silent": write_clip(root / "silent.mp4", seconds=2.0, fps=8, size=48, with_audio=False),
        "wav": write_clip(root / "tone.wav", seconds=2.0, with_video=False),
    }


@pytest.fixture(scope="module")
def converted_lavish(tmp_path_factory):
    """The original code's tiny AVE checkpoint, converted (safetensors + config + processor + card)."""
    return convert_lavish_checkpoint(LAVISH_FIXTURE, tmp_path_factory.mktemp("converted") / "lavish")


@pytest.fixture(scope="module", params=["lavish", "dg-sct"])
def saved(request, tmp_path_factory):
    return request.param, save_tiny_event_model(tmp_path_factory.mktemp("saved") / request.param, request.param)


def _reference(model, processor, path):
    """What the model gives on the processor's tensors of `path` (the pipeline must add nothing to them)."""
    inputs = processor(videos=str(path), return_tensors="pt")
    with torch.no_grad():
        return model(**inputs)


def test_converted_lavish_folder_localises_events_in_a_real_clip(converted_lavish, clips):
    localizer = pipeline("audio-visual-event-localization", model=str(converted_lavish))
    assert isinstance(localizer, AudioVisualEventLocalizationPipeline)
    assert type(localizer.model).__name__ == "LavishForAudioVisualEventLocalization"
    assert type(localizer.processor).__name__ == "LavishProcessor"
    result = localizer(str(clips["clip"]))

    segments = result["segments"]
    num_segments = localizer.processor.num_segments
    assert [s["segment"] for s in segments] == list(range(num_segments))
    # a 3-s clip in ten segments: the timeline covers the clip
    assert segments[0]["start"] == 0.0 and segments[-1]["end"] == pytest.approx(3.0, abs=0.05)
    reference = _reference(localizer.model, localizer.processor, clips["clip"])
    expected = reference.probabilities[0].max(-1)
    assert [s["label_id"] for s in segments] == expected.indices.tolist()
    assert [s["score"] for s in segments] == pytest.approx(expected.values.tolist(), abs=1e-6)
    assert all(s["label"] == localizer.model.config.id2label[s["label_id"]] for s in segments)
    assert result["events"] and result["events"][0]["start"] == 0.0

    timeline = format_event_timeline(result)
    assert timeline.count("\n") == num_segments and timeline.startswith("  0.00-")


def test_saved_folder_through_the_auto_classes_and_family_processor(saved, clips):
    model_type, folder = saved
    localizer = pipeline("audio-visual-event-localization", model=str(folder))
    family = hf_av.get_family(model_type)
    assert type(localizer.model).__name__ == family.tasks["event-localization"]
    assert type(localizer.processor).__name__ == family.processor.rsplit(".", 1)[-1]
    result = localizer(str(clips["clip"]), segment_duration=1.0)
    segments = result["segments"]
    assert len(segments) == SEGMENTS
    assert [(s["start"], s["end"]) for s in segments] == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)]
    assert {s["label"] for s in segments} <= set(EVENT_LABELS)

    reference = _reference(localizer.model, localizer.processor, clips["clip"])
    if model_type == "lavish":
        expected = reference.logits[0].argmax(-1).tolist()
    else:  # supervised-AVE layout: the video's event class where sigmoid(is_event) > 0.5, else background (last)
        event = int(reference.logits[0].argmax())
        expected = [event if p > 0.5 else localizer.model.config.background_id
                    for p in reference.is_event_logits[0].sigmoid().tolist()]
    assert [s["label_id"] for s in segments] == expected
    events = result["events"]
    assert all(event["label"] != "background" for event in events)


def test_dg_sct_background_is_found_without_a_background_name(tmp_path, clips):
    """DG-SCT's background class is structurally the last label: generic names still give background segments."""
    folder = save_tiny_event_model(tmp_path / "dg", "dg-sct", id2label={0: "a", 1: "b", 2: "c"},
                                   label2id={"a": 0, "b": 1, "c": 2})
    localizer = pipeline("audio-visual-event-localization", model=str(folder))
    result = localizer(str(clips["clip"]), threshold=1.0)  # nothing passes: every segment is background
    assert [s["label_id"] for s in result["segments"]] == [2] * SEGMENTS
    assert result["events"] == []


def test_a_video_without_audio_is_refused_naming_what_is_missing(saved, clips):
    model_type, folder = saved
    localizer = pipeline("audio-visual-event-localization", model=str(folder))
    with pytest.raises(MediaDecodingError, match=r"silent\.mp4: no audio track decoded; .*ForAudioVisualEventLocal"
                                                 r"ization localises events from audio AND visual input.*found only: "
                                                 r"visual"):
        localizer(str(clips["silent"]))
    with pytest.raises(MediaDecodingError, match=r"tone\.wav: no video frames decoded.*found only: audio"):
        localizer(str(clips["wav"]))


def test_predict_cli_prints_the_events(converted_lavish, clips, capsys):
    from hf_av.cli import main

    assert main(["predict", str(converted_lavish), str(clips["clip"]), "--json"]) == 0
    out = capsys.readouterr().out
    assert '"segments"' in out and '"events"' in out


def test_bad_background_label_is_named(saved, clips):
    _, folder = saved
    localizer = pipeline("audio-visual-event-localization", model=str(folder))
    with pytest.raises(ValueError, match="background_label 'silence' is not a label of the model"):
        localizer(str(clips["clip"]), background_label="silence")


def test_converted_folder_copy_loads_offline(converted_lavish, tmp_path, clips):
    """A copied folder is self-contained (config, weights, processor, card)."""
    copy = shutil.copytree(converted_lavish, tmp_path / "copy")
    assert (copy / "README.md").is_file()
    result = pipeline("audio-visual-event-localization", model=str(copy))(str(clips["clip"]))
    assert len(result["segments"]) == 10


@pytest.mark.parametrize("model_type, checkpoint, original_config, paper_number", [
    ("lavish", LAVISH_FIXTURE, None, "81.1"),
    ("dg-sct", "tests/fixtures/dg-sct/ave_tiny_state_dict.pth", "tests/fixtures/dg-sct/config.json", "82.2"),
], ids=["lavish", "dg-sct"])
def test_hf_av_convert_writes_a_card_with_the_papers_numbers(tmp_path, capsys, model_type, checkpoint,
                                                             original_config, paper_number):
    from hf_av.cli import main

    out = tmp_path / model_type
    argv = ["convert", "--model", model_type, "--checkpoint", checkpoint, "--output-dir", str(out),
            "--original-model", "ave"] + (["--original-config", original_config] if original_config else [])
    assert main(argv) == 0
    card = (out / "README.md").read_text()
    facts = hf_av.get_family(model_type).card
    assert paper_number in card and facts.paper in card and facts.original_repository in card
    assert f"license: {facts.license}" in card
    assert (out / "processor_config.json").is_file() and (out / "model.safetensors").is_file()

"""Bad inputs to the two AVE families (LAVisH, DG-SCT): every case ends in a clear `ValueError` naming what was
expected and what was found, never in a crash deep inside torch.

Cases: wrong number of segments (audio vs frames, labels vs clip), wrong frame size, wrong spectrogram shape given
to the model, an audio-less video (both families need both modalities) through the processor, the pipeline and
training, and segment labels that do not match the clip's segments. Cases the models do not check yet are marked
(Every case here is a clear error the family's model, processor, pipeline or training raises.)
"""

import pytest
import torch
from transformers import TrainingArguments, pipeline

from hf_av.errors import MediaDecodingError
from hf_av.families import get_family
from hf_av.training import AudioVisualJobArguments, build_trainer, run_training
from tests.pipelines._event_localization_models import (
    SEGMENTS,
    save_tiny_event_model,
    tiny_config,
    tiny_overrides,
    write_segment_corpus,
)
from tests.pipelines._helpers import write_clip

FAMILIES = ["lavish", "dg-sct"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=FAMILIES)
def family(request):
    """(model_type, model in eval mode, well-formed inputs of 2 clips x SEGMENTS segments)."""
    model_type = request.param
    config = tiny_config(model_type)
    torch.manual_seed(0)
    model = get_family(model_type).head_for_task("event-localization")(config).eval()
    if model_type == "lavish":
        size = config.backbone_config.image_size
        audio_shape = (size, size)  # the spectrogram is an image_size x image_size picture
    else:
        size = config.vision_config.image_size
        audio_shape = (101, config.audio_config.num_mel_bins)  # one tiled second at 8 kHz, hop 80
    inputs = {"input_values": torch.randn(2, SEGMENTS, *audio_shape), "pixel_values": torch.randn(2, SEGMENTS, 3, size, size)}
    return model_type, model, inputs


def test_well_formed_inputs_run(family):
    _, model, inputs = family
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape[0] == 2


# ---------------------------------------------------------------------------------------------------------- segments
def test_audio_and_frame_segment_counts_must_match(family):
    _, model, inputs = family
    with pytest.raises(ValueError, match=r"same .*segments.*\(2, 3\) and \(2, 2\)"):
        model(input_values=inputs["input_values"], pixel_values=inputs["pixel_values"][:, :2])


def test_segment_labels_must_match_the_clip(family):
    _, model, inputs = family
    labels = torch.zeros(2, SEGMENTS + 1, dtype=torch.long)
    with pytest.raises(ValueError, match=rf"labels must .*shape .*\(2, {SEGMENTS}\), got \(2, {SEGMENTS + 1}\)"):
        model(**inputs, labels=labels)


def test_segment_label_ids_must_be_classes(family, request):
    model_type, model, inputs = family
    with pytest.raises(ValueError, match=r"\[0, 3\).*7"):
        model(**inputs, labels=torch.full((2, SEGMENTS), 7))


# -------------------------------------------------------------------------------------------------------- frame size
@pytest.mark.parametrize("delta", [+8, -8], ids=["larger", "smaller"])
def test_wrong_frame_size_is_named(family, request, delta):
    model_type, model, inputs = family
    size = inputs["pixel_values"].shape[-1] + delta
    frames = torch.randn(2, SEGMENTS, 3, size, size)
    with pytest.raises(ValueError, match=rf"{size}.*{size - delta}|{size - delta}.*{size}"):
        model(input_values=inputs["input_values"], pixel_values=frames)


def test_wrong_channel_count_is_named(family):
    _, model, inputs = family
    frames = inputs["pixel_values"][:, :, :1]
    with pytest.raises(ValueError, match=r"3, height, width.*1, "):
        model(input_values=inputs["input_values"], pixel_values=frames)


# ------------------------------------------------------------------------------------------------ spectrogram shape
def test_wrong_mel_bins_are_named(family, request):
    model_type, model, inputs = family
    audio = inputs["input_values"]
    bad = torch.randn(*audio.shape[:-1], audio.shape[-1] + 3)
    with pytest.raises(ValueError, match=rf"{audio.shape[-1] + 3} mel bins.*{audio.shape[-1]}"):
        model(input_values=bad, pixel_values=inputs["pixel_values"])


def test_too_many_spectrogram_frames_are_named(family, request):
    model_type, model, inputs = family
    audio = inputs["input_values"]
    bad = torch.randn(audio.shape[0], audio.shape[1], audio.shape[2] * 2, audio.shape[3])
    with pytest.raises(ValueError, match=rf"{audio.shape[2] * 2} .*frames"):
        model(input_values=bad, pixel_values=inputs["pixel_values"])


@pytest.mark.parametrize("rank", [3, 5])
def test_spectrogram_of_the_wrong_rank_is_named(family, rank):
    _, model, inputs = family
    audio = inputs["input_values"]
    bad = audio[:, 0] if rank == 3 else audio.unsqueeze(2)
    with pytest.raises(ValueError, match=r"input_values"):
        model(input_values=bad, pixel_values=inputs["pixel_values"])


def test_one_modality_alone_is_refused(family):
    _, model, inputs = family
    with pytest.raises(ValueError, match=r"both|input_values"):
        model(pixel_values=inputs["pixel_values"])
    with pytest.raises(ValueError, match=r"both|pixel_values"):
        model(input_values=inputs["input_values"])


# ---------------------------------------------------------------------------------------------- audio-less video
@pytest.fixture(scope="module")
def silent_clip(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("silent") / "silent.mp4", seconds=3.0, fps=8, size=32, with_audio=False)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_audio_less_video_through_processor_and_pipeline(model_type, silent_clip, tmp_path):
    folder = save_tiny_event_model(tmp_path / model_type, model_type)
    localizer = pipeline("audio-visual-event-localization", model=str(folder))
    with pytest.raises(MediaDecodingError, match=r"silent\.mp4: no audio"):
        localizer.processor(videos=str(silent_clip), return_tensors="pt")  # default: audio-visual
    with pytest.raises(MediaDecodingError, match=r"silent\.mp4: no audio track decoded.*found only: visual"):
        localizer(str(silent_clip))


def test_audio_less_clip_in_a_training_manifest_is_skipped_and_named(silent_clip, tmp_path):
    manifest = write_segment_corpus(tmp_path / "corpus", num_clips=3)
    with open(manifest, "a") as handle:
        handle.write(f"{silent_clip},dog;dog;background\n")
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                             report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True, seed=0)
    job = AudioVisualJobArguments(task="event-localization", train_manifest=str(manifest), model_type="lavish",
                                  config_overrides=tiny_overrides("lavish"), max_decode_error_fraction=0.5)
    results = run_training(job, args)
    assert results["decode_errors"]["failed_samples"] == [str(silent_clip)]


# ------------------------------------------------------------------------------------ labels vs the clip's segments
@pytest.mark.parametrize("model_type", FAMILIES)
def test_manifest_segment_labels_must_match_the_processor(model_type, tmp_path):
    manifest = write_segment_corpus(tmp_path / "corpus", num_clips=2)
    text = manifest.read_text().replace("dog;dog;background", "dog;background", 1)
    manifest.write_text(text)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, report_to=[], use_cpu=True)
    job = AudioVisualJobArguments(task="event-localization", train_manifest=str(manifest), model_type=model_type,
                                  config_overrides=tiny_overrides(model_type))
    with pytest.raises(ValueError, match=rf"clip0\.mp4\): 2 segment labels, but the processor cuts every clip into "
                                         rf"{SEGMENTS} segments"):
        build_trainer(job, args)


def test_lavish_backbone_dict_without_model_type_is_swinv2():
    from hf_av import LavishConfig

    fields = {"embed_dim": 32, "depths": [1, 1], "num_heads": [1, 2], "image_size": 32, "window_size": 4}
    config = LavishConfig(backbone_config=fields, adapter_conv_groups=1)
    assert config.backbone_config.model_type == "swinv2" and config.backbone_config.embed_dim == 32

"""VATT preprocessing against the fixture made by running the original TF/DMVR eval chains.

The fixture (`tests/fixtures/processors/vatt`) holds the decoded inputs the original pipeline received, excerpts of
its outputs and SHA-256 digests of the full outputs; every check here feeds those inputs through the hf_av classes.
"""

from __future__ import annotations

import hashlib
import json
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from hf_av.features.tf_image import (
    crop_or_pad_center,
    resize_smallest,
    resize_smallest_output_size,
    three_crop,
    three_crop_offsets,
    zero_center,
)
from hf_av.processing.vatt import (
    VattFeatureExtractor,
    VattProcessor,
    VattTokenizer,
    VattVideoProcessor,
    linspace_window_indices,
    middle_window_indices,
)


VIDEO_PROTOCOLS = ["video_finetune_eval", "video_pretrain_eval", "video_single_clip"]
AUDIO_PROTOCOLS = ["audio_finetune_eval", "audio_pretrain_eval", "audio_single_clip"]


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def fixture_dir(fixtures_dir):
    return fixtures_dir / "processors" / "vatt"


@pytest.fixture(scope="module")
def meta(fixture_dir):
    return json.loads((fixture_dir / "processor_fixture.json").read_text())


@pytest.fixture(scope="module")
def tensors(fixture_dir):
    return load_file(str(fixture_dir / "processor_fixture.safetensors"))


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory, meta):
    path = tmp_path_factory.mktemp("vatt_vocab") / "vocab.txt"
    path.write_text("\n".join(meta["text"]["vocab"]) + "\n", encoding="utf-8")
    return path


def video_processor_for(protocol: dict) -> VattVideoProcessor:
    return VattVideoProcessor(
        num_frames=protocol["num_frames"],
        frame_stride=protocol["stride"],
        num_test_clips=protocol["num_test_clips"],
        min_resize=protocol["min_resize"],
        crop_size=protocol["crop_size"],
        multi_crop=protocol["multi_crop"],
    )


def feature_extractor_for(protocol: dict) -> VattFeatureExtractor:
    return VattFeatureExtractor(
        num_samples=protocol["num_samples"],
        audio_stride=protocol["stride"],
        num_test_clips=protocol["num_test_clips"],
    )


@pytest.fixture(scope="module")
def video_outputs(meta, tensors):
    """Each protocol's full output once, in the original channels-last layout `[views, T, H, W, 3]`."""
    outputs = {}
    for name in VIDEO_PROTOCOLS:
        processor = video_processor_for(meta["protocols"][name])
        pixel_values = processor(tensors["frames_small_uint8"], return_tensors="np")["pixel_values"]
        outputs[name] = pixel_values
    return outputs


# ---------------------------------------------------------------------------------------------- index rules


def test_frame_index_rules_match_dmvr(tensors):
    np.testing.assert_array_equal(linspace_window_indices(132, 4, 32, 2), tensors["frame_indices_linspace4"])
    np.testing.assert_array_equal(middle_window_indices(132, 32, 2)[0], tensors["frame_indices_middle"])
    assert VattVideoProcessor(num_test_clips=4).sample_frame_indices(132).shape == (4, 32)


def test_indices_wrap_around_short_sequences():
    # A 10-frame clip is tiled, not padded: window k takes (offset + 2k) mod 10.
    np.testing.assert_array_equal(middle_window_indices(10, 8, 2)[0], [0, 2, 4, 6, 8, 0, 2, 4, 6, 8][:8])
    np.testing.assert_array_equal(linspace_window_indices(10, 3, 4, 3), [[0, 3, 6, 9]] * 3)


# ---------------------------------------------------------------------------------------------- TF image ops


def test_resize_smallest_is_bit_exact(meta, tensors):
    resized = resize_smallest(tensors["frames_small_uint8"], 224)
    assert list(resized.shape) == meta["resized_small_shape"] and resized.dtype == np.uint8
    np.testing.assert_array_equal(resized[0], tensors["frames_small_resized_uint8_frame0"])
    assert sha256(resized) == meta["sha256"]["frames_small_resized_uint8"]

    hires = resize_smallest(tensors["frames_hires_uint8"], 224)
    assert list(hires.shape) == meta["hires_shapes"]["resized"]
    np.testing.assert_array_equal(hires, tensors["hires_resized_uint8"])


def test_hires_crops_match(meta, tensors):
    resized = tensors["hires_resized_uint8"]
    center = zero_center(crop_or_pad_center(resized, 224, 224))
    np.testing.assert_array_equal(center[:, ::2, ::2], tensors["hires_center_crop_sub2"])
    assert sha256(center) == meta["sha256"]["hires_center_crop_float32"]
    # The original concatenates the three crops on the time axis: [crop0, crop1, crop2] of one frame.
    multi = zero_center(three_crop(resized, 224, 224)).reshape(-1, 224, 224, 3)
    assert list(multi.shape) == meta["hires_shapes"]["multi"]
    assert sha256(multi) == meta["sha256"]["hires_multi_crop_float32"]


def test_tf_image_helpers():
    assert resize_smallest_output_size(360, 640, 224) == (224, 398)  # floor division, not rounding
    assert three_crop_offsets(224, 396, 224, 224) == [(0, 0), (0, 86), (0, 172)]
    assert three_crop_offsets(300, 224, 224, 224) == [(0, 0), (38, 0), (76, 0)]
    frame = np.full((1, 224, 224, 3), 7, dtype=np.uint8)
    assert resize_smallest(frame, 224) is frame  # no resize when the size already matches
    padded = crop_or_pad_center(np.ones((2, 4, 3), dtype=np.uint8), 4, 6)
    assert padded.shape == (4, 6, 3) and padded[1:3, 1:5].all() and padded.sum() == 2 * 4 * 3


# ---------------------------------------------------------------------------------------------- video protocols


@pytest.mark.parametrize("name", VIDEO_PROTOCOLS)
def test_video_protocols_match_original(name, meta, tensors, video_outputs):
    pixel_values = video_outputs[name]
    views = meta["protocols"][name]["shape"][0]
    assert pixel_values.shape == (1, views, 32, 3, 224, 224) and pixel_values.dtype == np.float32
    channels_last = pixel_values[0].transpose(0, 1, 3, 4, 2)
    assert sha256(channels_last) == meta["sha256"][name]
    np.testing.assert_array_equal(channels_last[:, 0, ::4, ::4], tensors[f"{name}_viewframe0_sub4"])
    # The full output is bit-exact (SHA above); means only differ by float32 summation order.
    np.testing.assert_allclose(
        channels_last.mean(axis=(2, 3), dtype=np.float64), tensors[f"{name}_mean_per_frame"], rtol=0, atol=2e-4
    )


def test_video_input_forms_agree(tensors):
    frames = tensors["frames_small_uint8"][:40]
    processor = VattVideoProcessor(num_frames=8, num_test_clips=2)
    reference = processor(frames, return_tensors="pt")["pixel_values"]
    assert isinstance(reference, torch.Tensor) and reference.shape == (1, 2, 8, 3, 224, 224)
    channels_first = torch.from_numpy(frames).permute(0, 3, 1, 2)
    as_list = list(frames)
    for other in (channels_first, as_list, [frames, frames], np.stack([frames, frames])):
        output = processor(other, return_tensors="pt")["pixel_values"]
        torch.testing.assert_close(output[:1], reference, rtol=0, atol=0)
    # Float frames are not truncated back to integers after the resize (DMVR keeps float inputs float), so they
    # agree with the uint8 path to within one uint8 step.
    as_float = processor(frames.astype(np.float32), return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(as_float, reference, rtol=0, atol=2 / 255 + 1e-6)


# ---------------------------------------------------------------------------------------------- audio protocols


@pytest.mark.parametrize("name", AUDIO_PROTOCOLS)
def test_audio_protocols_match_original(name, meta, tensors):
    extractor = feature_extractor_for(meta["protocols"][name])
    input_values = extractor(tensors["waveform"], sampling_rate=48000, return_tensors="np")["input_values"]
    views = meta["protocols"][name]["shape"][0]
    assert input_values.shape == (1, views, 153600) and input_values.dtype == np.float32
    windows = input_values[0]
    np.testing.assert_array_equal(windows[:, :2048], tensors[f"{name}_head2048"])
    np.testing.assert_array_equal(windows[:, -2048:], tensors[f"{name}_tail2048"])
    assert sha256(windows[..., None]) == meta["sha256"][name]


def test_audio_start_indices(tensors):
    length = tensors["waveform"].shape[0]
    for name, stride in (("audio_finetune_eval", 2), ("audio_pretrain_eval", 1)):
        starts = linspace_window_indices(length, 4, 153600, stride)[:, 0]
        np.testing.assert_array_equal(starts, tensors[f"{name}_start_index"])
    assert middle_window_indices(length, 153600, 1)[0, 0] == 50688


def test_audio_batches_and_forms(tensors):
    extractor = VattFeatureExtractor(num_samples=1000, num_test_clips=2)
    waveform = tensors["waveform"][:5000]
    single = extractor(waveform, sampling_rate=48000)["input_values"]
    for other in (torch.from_numpy(waveform), waveform[None], waveform.tolist()):
        np.testing.assert_array_equal(extractor(other, sampling_rate=48000)["input_values"], single)
    batch = extractor([waveform, waveform[:700]], sampling_rate=48000, return_tensors="pt")["input_values"]
    assert batch.shape == (2, 2, 1000)
    # A 700-sample clip is tiled to fill a 1000-sample window.
    np.testing.assert_array_equal(batch[1, 0, 700:].numpy(), waveform[:300])


# ---------------------------------------------------------------------------------------------- text


def test_text_ids_match_dmvr(meta, tensors, vocab_file):
    tokenizer = VattTokenizer(vocab_file=str(vocab_file))
    encoded = tokenizer(meta["text"]["captions"], return_tensors="np")
    np.testing.assert_array_equal(encoded["input_ids"], tensors["text_ids"])
    assert sha256(encoded["input_ids"].astype(np.int32)) == meta["sha256"]["text_ids"]
    np.testing.assert_array_equal(encoded["attention_mask"], (tensors["text_ids"] != 0).astype(np.int64))


def test_tokenizer_rules(vocab_file, tmp_path):
    tokenizer = VattTokenizer(vocab_file=str(vocab_file))
    assert tokenizer.tokenize("Foo-Bar, HÉLLO <pad>") == ["foobar", "hÉllo", "pad"]  # ASCII-only, no specials
    long_text = " ".join(["hello"] * 20)
    with_markers = VattTokenizer(vocab_file=str(vocab_file), prepend_bos=True, append_eos=True)
    ids = with_markers(long_text)["input_ids"]
    assert len(ids) == 16 and ids[0] == 1 and ids[-1] == 4  # <eos> is cut with the words, as in DMVR
    assert with_markers("hello")["input_ids"][:3] == [1, 4, 2]
    # `id word` vocabularies are read too.
    indexed = tmp_path / "indexed.txt"
    indexed.write_text("0 <pad>\n1 <bos>\n2 <eos>\n3 <unk>\n7 world\n", encoding="utf-8")
    assert VattTokenizer(vocab_file=str(indexed))("World!")["input_ids"][:2] == [7, 0]
    assert tokenizer.decode([4, 5, 0, 0], skip_special_tokens=True) == "hello world"


# ---------------------------------------------------------------------------------------------- save / load


def test_feature_extractor_round_trip(tmp_path, tensors):
    extractor = VattFeatureExtractor(audio_stride=2, num_test_clips=4, resample_input=False)
    extractor.save_pretrained(tmp_path)
    loaded = VattFeatureExtractor.from_pretrained(tmp_path)
    assert loaded.to_dict() == extractor.to_dict()
    assert (loaded.audio_stride, loaded.num_test_clips, loaded.num_samples) == (2, 4, 153600)
    assert not loaded.resample_input
    waveform = tensors["waveform"]
    np.testing.assert_array_equal(
        loaded(waveform, sampling_rate=48000)["input_values"], extractor(waveform, sampling_rate=48000)["input_values"]
    )


def test_video_processor_round_trip(tmp_path):
    processor = VattVideoProcessor(num_test_clips=4, multi_crop=True, min_resize=256)
    processor.save_pretrained(tmp_path)
    loaded = VattVideoProcessor.from_pretrained(tmp_path)
    assert loaded.to_dict() == processor.to_dict()
    assert (loaded.num_test_clips, loaded.multi_crop, loaded.min_resize, loaded.frame_rate) == (4, True, 256, 25.0)


def test_tokenizer_round_trip(tmp_path, vocab_file, meta):
    tokenizer = VattTokenizer(vocab_file=str(vocab_file), append_eos=True)
    tokenizer.save_pretrained(tmp_path)
    loaded = VattTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tokenizer.get_vocab() and loaded.append_eos and loaded.max_length == 16
    captions = meta["text"]["captions"]
    assert loaded(captions)["input_ids"] == tokenizer(captions)["input_ids"]


def test_processor_round_trip(tmp_path, vocab_file, tensors):
    processor = VattProcessor(
        feature_extractor=VattFeatureExtractor(audio_stride=2, num_test_clips=4),
        video_processor=VattVideoProcessor(num_test_clips=4, multi_crop=True),
        tokenizer=VattTokenizer(vocab_file=str(vocab_file)),
    )
    processor.save_pretrained(tmp_path)
    loaded = VattProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.feature_extractor, VattFeatureExtractor)
    assert isinstance(loaded.video_processor, VattVideoProcessor)
    assert isinstance(loaded.tokenizer, VattTokenizer)
    assert loaded.feature_extractor.to_dict() == processor.feature_extractor.to_dict()
    assert loaded.video_processor.to_dict() == processor.video_processor.to_dict()
    assert loaded.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    waveform = tensors["waveform"][:20000]
    frames = tensors["frames_small_uint8"][:20]
    inputs = dict(text=["hello world"], audio=waveform, sampling_rate=48000, images=frames, num_test_clips=1)
    expected, actual = processor(**inputs, return_tensors="pt"), loaded(**inputs, return_tensors="pt")
    assert set(actual) == {"input_values", "pixel_values", "input_ids", "attention_mask"}
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=0, atol=0)
    assert actual["pixel_values"].shape == (1, 3, 32, 3, 224, 224)
    assert actual["input_values"].shape == (1, 4, 153600)


def test_default_processor_has_defaults():
    processor = VattProcessor()
    assert processor.video_processor.num_test_clips == 1 and processor.feature_extractor.sampling_rate == 48000
    with pytest.warns(UserWarning, match="no word vocabulary"):
        ids = processor(text=["hello"])["input_ids"]
    assert ids == [[3] + [0] * 15]


# ---------------------------------------------------------------------------------------------- files


def _write_test_video(path, num_frames=60, fps=25, size=(96, 64), with_audio=True):
    av = pytest.importorskip("av")
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=48000) if with_audio else None
        if audio is not None:
            audio.layout = "stereo"
        for index in range(num_frames):
            image = np.full((size[1], size[0], 3), (index * 4) % 256, dtype=np.uint8)
            image[:, : size[0] // 2, 1] = 200
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            samples = (0.1 * rng.standard_normal((2, 48000 * num_frames // fps))).astype(np.float32)
            for start in range(0, samples.shape[1], 1024):
                chunk = np.ascontiguousarray(samples[:, start : start + 1024])
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate = 48000
                for packet in audio.encode(frame):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)


def test_processor_on_video_files(tmp_path):
    pytest.importorskip("hf_av.media", reason="hf_av.media not available")
    from hf_av import media

    if not hasattr(media, "decode_media"):
        pytest.skip("hf_av.media.decode_media not available yet")
    with_audio, silent = tmp_path / "clip.mp4", tmp_path / "silent.mp4"
    _write_test_video(with_audio)
    _write_test_video(silent, num_frames=30, with_audio=False)

    # One window x three crops keeps the test light; the 4 x 3 protocol itself is checked against the fixture.
    processor = VattProcessor(
        feature_extractor=VattFeatureExtractor(num_test_clips=4, audio_stride=2),
        video_processor=VattVideoProcessor(num_test_clips=1, multi_crop=True),
    )
    outputs = processor(videos=[str(with_audio), with_audio], return_tensors="pt")
    assert outputs["pixel_values"].shape == (2, 3, 32, 3, 224, 224)
    assert outputs["input_values"].shape == (2, 4, 153600)
    assert outputs["pixel_values"].min() >= -1 and outputs["pixel_values"].max() <= 1
    assert torch.equal(outputs["pixel_values"][0], outputs["pixel_values"][1])
    assert torch.equal(outputs["input_values"][0], outputs["input_values"][1])

    # The file path and the decoded frames in memory give the same views.
    decoded = media.decode_media(str(with_audio), audio=False, frame_rate=25)
    assert decoded.frames.shape[0] == 60  # 2.4 s at 25 fps
    from_frames = processor.video_processor(decoded.frames, return_tensors="pt")["pixel_values"]
    assert torch.equal(outputs["pixel_values"][:1], from_frames)

    silent_outputs = processor(videos=str(silent), num_test_clips=1, multi_crop=False, return_tensors="pt")
    assert set(silent_outputs) == {"pixel_values"} and silent_outputs["pixel_values"].shape[:2] == (1, 1)
    with pytest.raises(ValueError, match="no audio track"):
        processor(videos=[str(with_audio), str(silent)])


# ---------------------------------------------------------------------------------------------- errors


def test_bad_audio_is_refused():
    extractor = VattFeatureExtractor(resample_input=False)
    waveform = np.zeros(1000, dtype=np.float32)
    with pytest.raises(ValueError, match="48000 Hz"):
        extractor(waveform, sampling_rate=16000)
    with pytest.raises(ValueError, match="sampling_rate"):
        extractor(waveform)  # a rate must be given
    with pytest.raises(ValueError, match="NaN"):
        extractor(np.array([0.0, np.nan], dtype=np.float32), sampling_rate=48000)
    with pytest.raises(ValueError, match="empty|channels-last"):  # the shared base reports [1, 0] as a layout error
        extractor(np.zeros(0, dtype=np.float32), sampling_rate=48000)
    with pytest.raises(ValueError, match="mono"):
        extractor([np.zeros((2, 100), dtype=np.float32)], sampling_rate=48000)
    with pytest.raises(ValueError, match="shape"):
        extractor(np.zeros((2, 2, 2, 100), dtype=np.float32), sampling_rate=48000)
    with pytest.raises(ValueError, match="integer PCM"):
        extractor(np.zeros(100, dtype=np.int16), sampling_rate=48000)
    with pytest.raises(ValueError, match="empty list"):
        extractor([], sampling_rate=48000)


def test_other_rates_are_resampled_by_default():
    extractor = VattFeatureExtractor(num_samples=4800)
    tone = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
    windows = extractor(tone, sampling_rate=16000, return_tensors="pt")["input_values"]
    assert windows.shape == (1, 1, 4800)
    # One second at 16 kHz becomes 48000 samples; the middle window of 4800 still holds the 440 Hz tone.
    spectrum = torch.fft.rfft(windows[0, 0]).abs()
    assert abs(int(spectrum.argmax()) * 48000 / 4800 - 440) <= 10


def test_bad_video_is_refused():
    processor = VattVideoProcessor(num_frames=4)
    frames = np.zeros((8, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="fps"):
        processor(frames, frame_rate=30)
    with pytest.raises(ValueError, match="shape"):
        processor(np.zeros((16, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        processor(np.zeros((8, 16, 16, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="empty clip"):
        processor(np.zeros((0, 16, 16, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        processor(np.full((8, 16, 16, 3), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="0..255"):
        processor(np.full((8, 16, 16, 3), 300.0, dtype=np.float32))
    with pytest.raises(ValueError, match="Empty video"):
        processor([])
    with pytest.raises(ValueError, match="same shape"):
        processor([np.zeros((16, 16, 3), np.uint8), np.zeros((8, 16, 3), np.uint8)])


def test_bad_tokenizer_and_processor_input(tmp_path):
    vocab = tmp_path / "bad.txt"
    vocab.write_text("<unk>\n<pad>\n<bos>\n<eos>\n", encoding="utf-8")
    with pytest.raises(ValueError, match="must be 0"):
        VattTokenizer(vocab_file=str(vocab))
    vocab.write_text("<pad>\n<bos>\n<eos>\n", encoding="utf-8")
    with pytest.raises(ValueError, match="special tokens"):
        VattTokenizer(vocab_file=str(vocab))
    processor = VattProcessor()
    with pytest.raises(ValueError, match="Nothing to process"):
        processor()
    frames = np.zeros((8, 16, 16, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="not both"):
        processor(videos=frames, images=frames)
    with pytest.raises(TypeError, match="VattVideoProcessor"):
        VattProcessor(video_processor=VattFeatureExtractor())

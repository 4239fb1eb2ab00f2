"""Property-based fuzzing of every feature extractor, image/video processor and processor (hypothesis).

Contract: every outcome is either a correct result (documented shape, float32, finite) or a ``ValueError`` with a
message; never another exception (RuntimeError/IndexError from torch, ZeroDivisionError, MemoryError) and never
an output of another shape. Inputs vary length, sampling rate, channels, layout, dtype (float16/32/64, int16,
uint8, bool), spatial size, and inject NaN / inf. Sampling rates are drawn from 1 kHz to 96 kHz (common rates and
arbitrary integers; coprime pairs must be refused clearly, not exhaust memory).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_av import (
    CavMaeFeatureExtractor,
    CavMaeImageProcessor,
    CavMaeProcessor,
    DgSctFeatureExtractor,
    DgSctImageProcessor,
    LavishFeatureExtractor,
    LavishImageProcessor,
    LavishProcessor,
    VattFeatureExtractor,
    VattVideoProcessor,
)

# max_examples per property; the README's counts are computed from these numbers.
AUDIO_EXAMPLES = 40
IMAGE_EXAMPLES = 40
VIDEO_EXAMPLES = 25
PROCESSOR_EXAMPLES = 25
def fuzz(max_examples):
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

FEATURE_EXTRACTORS = {
    "cav_mae": (CavMaeFeatureExtractor(), lambda b: (b, 1024, 128)),
    "lavish": (LavishFeatureExtractor(), lambda b: (b, 10, 192, 192)),
    "dg_sct": (DgSctFeatureExtractor(), lambda b: (b, 10, 1001, 64)),
    "vatt": (VattFeatureExtractor(), lambda b: (b, 1, 153600)),
}
IMAGE_PROCESSORS = {
    "cav_mae": (CavMaeImageProcessor(), 224),
    "lavish": (LavishImageProcessor(), 192),
    "dg_sct": (DgSctImageProcessor(), 192),
}
COMMON_RATES = [8000, 16000, 22050, 32000, 44100, 48000, 96000]
# Mostly common rates, then any multiple of 100 Hz, then arbitrary integers (often coprime with the model's rate).
RATES = st.one_of(st.sampled_from(COMMON_RATES), st.integers(10, 960).map(lambda r: 100 * r), st.integers(1000, 96000))


def _expect(call, check, outcomes):
    """Run ``call``; a ValueError is an accepted outcome (must have a message), any other exception fails."""
    try:
        out = call()
    except ValueError as exc:
        assert str(exc), "ValueError without a message"
        outcomes["clear ValueError"] += 1
        return None
    check(out)
    outcomes["correct result"] += 1
    return out


def _run(prop, outcomes, examples, name):
    """Run a hypothesis property and require that valid inputs were really exercised (not only refusals)."""
    prop()
    print(f"fuzz {name}: {dict(outcomes)}")
    assert sum(outcomes.values()) >= examples
    assert outcomes["correct result"] >= examples // 5, f"{name}: too few valid inputs generated: {dict(outcomes)}"


def _finite_float32(tensor):
    assert tensor.dtype == torch.float32
    assert torch.isfinite(tensor).all()


@st.composite
def waveforms(draw):
    # Hypothesis picks the structure (batch, lengths, layout, seed); the seeded rng picks dtype, amplitude and
    # NaN/inf injection uniformly, so that hypothesis' bias towards edge cases does not starve the valid inputs.
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = draw(st.integers(1, 2))
    channels = int(rng.choice([1, 1, 1, 2, 3]))
    length = draw(st.sampled_from([0, 1, 399, 400, 401, 4000, 16000, 33000]) | st.integers(0, 20000))
    dtype = str(rng.choice(["float32", "float32", "float32", "float64", "float16", "int16", "uint8", "bool"]))
    amplitude = float(rng.choice([0.5, 1.0, 0.0, 1e-6, 100.0]))
    clips = []
    for _ in range(batch):
        clip = rng.standard_normal((channels, length)) * amplitude
        clip = clip > 0 if dtype == "bool" else clip.astype(dtype)
        if length and np.issubdtype(clip.dtype, np.floating) and rng.random() < 0.15:
            clip[0, rng.integers(length)] = rng.choice([np.nan, np.inf, -np.inf])
        clips.append(clip[0] if channels == 1 and rng.random() < 0.5 else clip)
    layout = draw(st.sampled_from(["list", "array", "tensor"]))
    if layout != "list" and len({c.shape for c in clips}) == 1 and all(c.ndim == 1 for c in clips):
        stacked = np.stack(clips)
        return (stacked if layout == "array" else torch.from_numpy(stacked)), batch, channels
    return clips, batch, channels


@pytest.mark.parametrize("family", sorted(FEATURE_EXTRACTORS))
def test_feature_extractors(family):
    extractor, shape = FEATURE_EXTRACTORS[family]
    outcomes = Counter()

    @fuzz(AUDIO_EXAMPLES)
    @given(data=waveforms(), rate=RATES)
    def prop(data, rate):
        audio, batch, channels = data

        def check(out):
            values = out["input_values"]
            assert tuple(values.shape) == shape(batch), (tuple(values.shape), shape(batch))
            _finite_float32(values)

        _expect(lambda: extractor(audio, sampling_rate=rate, return_tensors="pt"), check, outcomes)

    _run(prop, outcomes, AUDIO_EXAMPLES, f"{family} feature extractor")


@st.composite
def images(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    height, width = draw(st.integers(0, 40)), draw(st.integers(0, 40))
    channels = int(rng.choice([1, 3, 3, 3, 4, 2]))
    leading = draw(st.sampled_from([(), (1,), (2,), (2, 3)]))
    dtype = str(rng.choice(["uint8", "uint8", "float32", "float64", "int16", "bool"]))
    array = (rng.random((*leading, height, width, channels)) * 255).astype(dtype)
    if array.size and np.issubdtype(array.dtype, np.floating) and rng.random() < 0.15:
        array.reshape(-1)[0] = rng.choice([np.nan, np.inf, -np.inf])
    if rng.random() < 0.5:
        array = np.moveaxis(array, -1, -3)  # channels first
    return array, leading


@pytest.mark.parametrize("family", sorted(IMAGE_PROCESSORS))
def test_image_processors(family):
    processor, size = IMAGE_PROCESSORS[family]
    outcomes = Counter()

    @fuzz(IMAGE_EXAMPLES)
    @given(data=images(), as_tensor=st.booleans())
    def prop(data, as_tensor):
        array, leading = data
        expected = (1 if not leading else leading[0], *leading[1:], 3, size, size)

        def check(out):
            assert tuple(out["pixel_values"].shape) == expected
            _finite_float32(out["pixel_values"])

        _expect(lambda: processor(torch.from_numpy(array) if as_tensor else array, return_tensors="pt"), check,
                outcomes)

    _run(prop, outcomes, IMAGE_EXAMPLES, f"{family} image processor")


@st.composite
def videos(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    frames, height, width = draw(st.integers(0, 40)), draw(st.integers(0, 24)), draw(st.integers(0, 24))
    dtype = str(rng.choice(["uint8", "uint8", "float32", "float64", "int16"]))
    scale = float(rng.choice([1.0, 255.0, 255.0, 300.0]))
    array = (rng.random((frames, height, width, 3)) * scale).astype(dtype)
    if array.size and np.issubdtype(array.dtype, np.floating) and rng.random() < 0.15:
        array.reshape(-1)[-1] = rng.choice([np.nan, np.inf, -np.inf])
    return array


def test_vatt_video_processor():
    processor = VattVideoProcessor(min_resize=32, crop_size=32, num_frames=8)
    outcomes = Counter()

    @fuzz(VIDEO_EXAMPLES)
    @given(clip=videos(), clips=st.sampled_from([1, 2]), multi_crop=st.booleans())
    def prop(clip, clips, multi_crop):
        views = clips * (3 if multi_crop else 1)

        def check(out):
            assert tuple(out["pixel_values"].shape) == (1, views, 8, 3, 32, 32)
            _finite_float32(out["pixel_values"])

        _expect(lambda: processor(clip, num_test_clips=clips, multi_crop=multi_crop, return_tensors="pt"), check,
                outcomes)

    _run(prop, outcomes, VIDEO_EXAMPLES, "vatt video processor")


def test_processors_pair_audio_with_images():
    outcomes = Counter()

    @fuzz(PROCESSOR_EXAMPLES)
    @given(audio_batch=st.integers(1, 3), image_batch=st.integers(1, 3), seconds=st.sampled_from([0.01, 0.3, 1.2]),
           rate=st.sampled_from([16000, 22050]))
    def prop(audio_batch, image_batch, seconds, rate):
        _pair(audio_batch, image_batch, seconds, rate, outcomes)

    _run(prop, outcomes, 2 * PROCESSOR_EXAMPLES, "processors audio+images")


# Default frames, fewer mel bins: the pairing logic is what is fuzzed here, not the fbank cost.
_SMALL_LAVISH = LavishProcessor(LavishFeatureExtractor(num_mel_bins=32, target_length=192))


def _pair(audio_batch, image_batch, seconds, rate, outcomes):
    audio = [np.zeros(int(seconds * rate), np.float32) for _ in range(audio_batch)]
    for processor, images, shape in (
        (CavMaeProcessor(), np.zeros((image_batch, 20, 30, 3), np.uint8), (3, 224, 224)),
        (_SMALL_LAVISH, np.zeros((image_batch, 10, 20, 30, 3), np.uint8), (10, 3, 192, 192)),
    ):
        def check(out):
            assert out["input_values"].shape[0] == out["pixel_values"].shape[0] == audio_batch == image_batch
            assert tuple(out["pixel_values"].shape[1:]) == shape

        _expect(lambda: processor(audio=audio, images=images, sampling_rate=rate, return_tensors="pt"), check,
                outcomes)
        if audio_batch != image_batch:
            with pytest.raises(ValueError):
                processor(audio=audio, images=images, sampling_rate=rate)

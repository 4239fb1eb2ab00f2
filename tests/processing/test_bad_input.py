import numpy as np
import pytest
import torch

from hf_av import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor, LavishProcessor
from hf_av.errors import MediaDecodingError


@pytest.mark.parametrize(
    "audio,kwargs,match",
    [
        (torch.full((16000,), float("nan")), {}, "NaN"),
        (torch.full((16000,), float("inf")), {}, "infinite"),
        (torch.zeros(0), {}, "empty"),
        (torch.zeros(100), {}, "too short"),
        (np.zeros(16000, np.int16), {}, "integer PCM"),
        ([np.zeros((16000, 2), np.float32)], {}, "channels-last"),
        (torch.zeros(2, 2, 2, 16000), {}, "expected"),
        ("not audio", {}, "expected a numpy array"),
        (torch.zeros(16000), {"sampling_rate": None}, "sampling_rate"),
    ],
)
def test_feature_extractor_errors(audio, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CavMaeFeatureExtractor()(audio, **{"sampling_rate": 16000, **kwargs})


def test_refused_rate_and_channel():
    with pytest.raises(ValueError, match="expects 16000 Hz"):
        CavMaeFeatureExtractor(resample_input=False)(torch.zeros(48000), sampling_rate=48000)
    with pytest.raises(ValueError, match="channel"):
        CavMaeFeatureExtractor(channel=1)(torch.zeros(16000), sampling_rate=16000)


def test_image_errors():
    ip = CavMaeImageProcessor()
    with pytest.raises(ValueError, match="3-, 4- or 5-dim"):
        ip(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="channel"):
        ip(np.zeros((10, 10, 7), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        ip(np.full((10, 10, 3), np.nan, np.float32))
    with pytest.raises(ValueError, match="uint8 or floating"):
        ip(np.zeros((10, 10, 3), bool))
    with pytest.raises(ValueError, match="size"):
        CavMaeImageProcessor(size={"longest": 3})


def test_processor_errors(tmp_path, test_video):
    with pytest.raises(ValueError, match="Nothing to process"):
        CavMaeProcessor()()
    with pytest.raises(ValueError, match="not both"):
        CavMaeProcessor()(videos=test_video, audio=torch.zeros(16000), sampling_rate=16000)
    with pytest.raises(ValueError, match="unknown arguments"):
        CavMaeProcessor()(videos=test_video, frame_idx=3)
    with pytest.raises(ValueError, match="frame_index"):
        CavMaeProcessor()(videos=test_video, frame_index=12)
    with pytest.raises(ValueError, match="frame sequences"):
        LavishProcessor()(images=[np.zeros((50, 50, 3), np.uint8)])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with pytest.raises(ValueError) as info:
        CavMaeProcessor()(videos=broken)
    assert isinstance(info.value, MediaDecodingError)

import json

import pytest
import torch
from safetensors.torch import load_file

from hf_av import LavishFeatureExtractor, LavishImageProcessor, LavishProcessor


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    folder = fixtures_dir / "processors" / "lavish"
    return load_file(folder / "processor_fixture.safetensors"), json.loads((folder / "processor_fixture.json").read_text())


def test_fixture_reproduced(fixture):
    data, meta = fixture
    out = LavishProcessor()(audio=[data["waveform"]], sampling_rate=16000, images=data["frames_uint8"], return_tensors="pt")
    assert out["input_values"].shape == (1, 10, 192, 192)
    assert out["pixel_values"].shape == (1, 10, 3, 192, 192)
    # Achieved 1.3e-5 (README tolerance 1e-3); rows 188..191 are zero padding added after normalisation.
    assert (out["input_values"][0, [0, 4, 9]] - data["audio_spec_segments_0_4_9"]).abs().max() < 1e-4
    assert torch.all(out["input_values"][0, :, 188:] == 0)
    assert torch.equal(out["pixel_values"][0, [0, 9]], data["pixel_values_frames_0_9"])  # bit-exact
    assert LavishFeatureExtractor().segment_offsets(84960) == meta["segment_offsets"]
    antialiased = LavishImageProcessor(antialias=True)(data["frames_uint8"][5], return_tensors="pt")["pixel_values"][0]
    assert torch.equal(antialiased, data["pixel_values_antialias_frame5"])


def test_short_clip_policy_and_errors():
    fe = LavishFeatureExtractor()
    out = fe([torch.randn(2, 8000)], sampling_rate=16000, return_tensors="pt")["input_values"]
    assert out.shape == (1, 10, 192, 192)
    assert torch.equal(out[0, 0], out[0, 9])  # padded to 1.1 s: every segment starts at 0
    with pytest.raises(ValueError, match="too short"):
        fe(torch.randn(300), sampling_rate=16000)


def test_video_file(test_video):
    out = LavishProcessor()(videos=test_video, return_tensors="pt")
    assert out["input_values"].shape == (1, 10, 192, 192) and out["input_values"].dtype == torch.float32
    assert out["pixel_values"].shape == (1, 10, 3, 192, 192) and out["pixel_values"].dtype == torch.float32
    brightness = out["pixel_values"][0].mean(dim=(1, 2, 3))
    assert torch.all(brightness[1:] >= brightness[:-1])  # frames come in time order


def test_save_load_round_trip(tmp_path):
    LavishProcessor(LavishFeatureExtractor(num_segments=5), LavishImageProcessor(antialias=True)).save_pretrained(tmp_path)
    loaded = LavishProcessor.from_pretrained(tmp_path)
    assert loaded.feature_extractor.num_segments == 5 and loaded.image_processor.antialias is True
    LavishFeatureExtractor(frame_shift=10.0).save_pretrained(tmp_path / "fe")
    assert LavishFeatureExtractor.from_pretrained(tmp_path / "fe").frame_shift == 10.0
    LavishImageProcessor(size={"height": 224, "width": 224}).save_pretrained(tmp_path / "ip")
    assert LavishImageProcessor.from_pretrained(tmp_path / "ip").size == {"height": 224, "width": 224}

import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from hf_av import DgSctFeatureExtractor, DgSctImageProcessor, DgSctProcessor
from hf_av.features import log_mel_spectrogram


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    folder = fixtures_dir / "processors" / "dg-sct"
    return load_file(folder / "processor_fixture.safetensors"), json.loads((folder / "processor_fixture.json").read_text())


def _sha(tensor):
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()


def test_fixture_reproduced(fixture):
    data, meta = fixture
    processor = DgSctProcessor()
    out = processor(audio=data["wave"], sampling_rate=32000, images=data["frames_uint8"], return_tensors="pt", return_waveform=True)
    wave = out["input_values"][0]
    assert wave.shape == (10, 320000)
    assert torch.equal(wave[0, :64000], data["wave_out_row0_first64000"])
    assert _sha(wave) == meta["sha256_full_outputs"]["wave_out [10,320000] float32"]  # tiling bit-exact
    pixels = out["pixel_values"][0]
    assert _sha(pixels) == meta["sha256_full_outputs"]["pixel_values [10,3,192,192] float32 (antialias=False)"]
    assert torch.equal(pixels[[0, 9]], data["pixel_values_frames_0_9"])


def test_log_mel_output_is_front_end_of_tiled_wave(fixture):
    data, _ = fixture
    fe = DgSctFeatureExtractor()
    log_mel = fe(data["wave"], sampling_rate=32000, return_tensors="pt")["input_values"]
    assert log_mel.shape == (1, 10, 1001, 64)
    tiled = fe(data["wave"], sampling_rate=32000, return_tensors="pt", return_waveform=True)["input_values"]
    expected = log_mel_spectrogram(tiled[0, :2], sampling_rate=32000, n_fft=1024, hop_length=320, n_mels=64, f_min=50, f_max=14000)
    assert torch.equal(log_mel[0, :2], expected)


def test_length_policy():
    wave = torch.randn(50000, generator=torch.Generator().manual_seed(0))
    looped = DgSctFeatureExtractor(return_waveform=True)(wave, sampling_rate=32000, return_tensors="pt")["input_values"][0]
    assert torch.equal(looped[1, :32000], torch.cat([wave[32000:], wave[:14000]]))  # np.resize semantics
    padded = DgSctFeatureExtractor(return_waveform=True, length_policy="pad")(wave, sampling_rate=32000, return_tensors="pt")
    assert torch.all(padded["input_values"][0, 2:] == 0)
    long = torch.randn(400000)
    assert torch.equal(DgSctFeatureExtractor().tile_segments(long)[9, :32000], long[288000:320000])
    with pytest.raises(ValueError, match="length_policy"):
        DgSctFeatureExtractor(length_policy="stretch")


def test_video_file(test_video):
    out = DgSctProcessor()(videos=test_video, return_tensors="pt")
    assert out["input_values"].shape == (1, 10, 1001, 64) and out["input_values"].dtype == torch.float32
    assert out["pixel_values"].shape == (1, 10, 3, 192, 192) and out["pixel_values"].dtype == torch.float32


def test_save_load_round_trip(tmp_path):
    DgSctProcessor(DgSctFeatureExtractor(n_fft=256, num_mel_bins=32, return_waveform=True)).save_pretrained(tmp_path)
    loaded = DgSctProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.image_processor, DgSctImageProcessor)
    assert (loaded.feature_extractor.n_fft, loaded.feature_extractor.num_mel_bins) == (256, 32)
    assert loaded.feature_extractor.return_waveform is True
    DgSctFeatureExtractor(length_policy="pad").save_pretrained(tmp_path / "fe")
    assert DgSctFeatureExtractor.from_pretrained(tmp_path / "fe").length_policy == "pad"
    DgSctImageProcessor(antialias=True).save_pretrained(tmp_path / "ip")
    assert DgSctImageProcessor.from_pretrained(tmp_path / "ip").antialias is True

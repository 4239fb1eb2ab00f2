import hashlib
import json

import pytest
import torch
from safetensors.torch import load_file

from hf_av import CavMaeFeatureExtractor, CavMaeImageProcessor, CavMaeProcessor


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    folder = fixtures_dir / "processors" / "cav-mae"
    return load_file(folder / "processor_fixture.safetensors"), json.loads((folder / "processor_fixture.json").read_text())


def _sha(tensor):
    return hashlib.sha256(tensor.contiguous().numpy().tobytes()).hexdigest()


def test_fixture_reproduced(fixture):
    data, meta = fixture
    out = CavMaeProcessor()(audio=data["waveform"], sampling_rate=16000, images=data["frames_uint8"][5], return_tensors="pt")
    assert out["input_values"].shape == (1, 1024, 128) and out["input_values"].dtype == torch.float32
    # Achieved 1.9e-5 (README tolerance 1e-3); padded rows are exactly 5.081 / 4.4849.
    assert (out["input_values"][0] - data["fbank"]).abs().max() < 1e-4
    assert torch.all(out["input_values"][0, 529:] == torch.tensor(5.081) / 4.4849)
    assert torch.equal(out["pixel_values"][0], data["pixel_values_frame5"])  # bit-exact
    assert _sha(out["pixel_values"][0]) == meta["sha256"]["pixel_values_frame5"]
    frame0 = CavMaeImageProcessor()(data["frames_uint8"][0], return_tensors="pt")["pixel_values"][0]
    assert _sha(frame0) == meta["sha256"]["pixel_values_frame0"]


def test_feature_extractor_batch_resample_channels(fixture):
    data, _ = fixture
    fe = CavMaeFeatureExtractor()
    wave = data["waveform"][0]
    stereo = torch.stack([wave, torch.zeros_like(wave)])
    batch = fe([stereo, wave[:40000]], sampling_rate=16000, return_tensors="pt")["input_values"]
    single = fe(wave, sampling_rate=16000, return_tensors="pt")["input_values"][0]
    assert torch.equal(batch[0], single)  # first channel, like `sox remix 1`
    assert batch.shape == (2, 1024, 128)
    as_numpy = fe(wave.numpy(), sampling_rate=16000)["input_values"]
    assert as_numpy.shape == (1, 1024, 128) and type(as_numpy).__module__ == "numpy"
    # 48 kHz input is resampled to 16 kHz (same frame count as a 16 kHz clip of the same duration).
    at_48k = fe(torch.randn(3 * 16000 * 3), sampling_rate=48000, return_tensors="pt")["input_values"]
    assert at_48k.shape == (1, 1024, 128)
    cut = CavMaeFeatureExtractor(target_length=100)(wave, sampling_rate=16000, return_tensors="pt")["input_values"][0]
    assert torch.equal(cut, single[:100])


def test_training_augmentation_is_opt_in(fixture):
    data, _ = fixture
    fe = CavMaeFeatureExtractor(frequency_mask=48, time_mask=192, add_noise=True)
    plain = fe(data["waveform"], sampling_rate=16000, return_tensors="pt")["input_values"]
    assert torch.allclose(plain[0], data["fbank"], atol=1e-4)
    augmented = fe(
        data["waveform"], sampling_rate=16000, return_tensors="pt", training=True, generator=torch.Generator().manual_seed(0)
    )["input_values"]
    assert not torch.allclose(augmented, plain)


def test_video_file(test_video):
    processor = CavMaeProcessor()
    out = processor(videos=[test_video, test_video], return_tensors="pt")
    assert out["input_values"].shape == (2, 1024, 128) and out["input_values"].dtype == torch.float32
    assert out["pixel_values"].shape == (2, 3, 224, 224) and out["pixel_values"].dtype == torch.float32
    # 2 s clip at 16 kHz -> 1 + (32000 - 400) // 160 = 198 fbank frames, the rest is padding.
    assert torch.all(out["input_values"][0, 198:] == out["input_values"][0, -1])
    assert not torch.all(out["input_values"][0, 197] == out["input_values"][0, -1])
    all_frames = processor(videos=str(test_video), return_tensors="pt", frame_index="all")["pixel_values"]
    assert all_frames.shape == (1, 10, 3, 224, 224)
    # The synthetic clip's brightness grows with the frame number: frame 5 is brighter than frame 0.
    assert all_frames[0, 5].mean() > all_frames[0, 0].mean()
    assert torch.allclose(all_frames[0, 5], out["pixel_values"][0])


def test_save_load_round_trip(tmp_path):
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoProcessor

    from hf_av import CavMaeConfig

    CavMaeConfig().save_pretrained(tmp_path)
    CavMaeProcessor(CavMaeFeatureExtractor(target_length=512, mean=-4.0)).save_pretrained(tmp_path)
    for loaded in (CavMaeProcessor.from_pretrained(tmp_path), AutoProcessor.from_pretrained(tmp_path)):
        assert isinstance(loaded, CavMaeProcessor)
        assert loaded.feature_extractor.target_length == 512 and loaded.feature_extractor.mean == -4.0
        assert loaded.image_processor.to_dict() == CavMaeImageProcessor().to_dict()
    assert isinstance(AutoFeatureExtractor.from_pretrained(tmp_path), CavMaeFeatureExtractor)
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), CavMaeImageProcessor)
    fe_dir, ip_dir = tmp_path / "fe", tmp_path / "ip"
    CavMaeFeatureExtractor(num_mel_bins=64).save_pretrained(fe_dir)
    CavMaeImageProcessor(crop_size={"height": 200, "width": 200}).save_pretrained(ip_dir)
    assert CavMaeFeatureExtractor.from_pretrained(fe_dir).num_mel_bins == 64
    assert CavMaeImageProcessor.from_pretrained(ip_dir).crop_size == {"height": 200, "width": 200}

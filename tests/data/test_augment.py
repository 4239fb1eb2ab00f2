"""Training-time augmentation: random frame, fbank noise, time roll, and where it applies (training only)."""

import pytest
import torch

from hf_av.data import AudioVisualAugmentation, AudioVisualCollator


def _example(num_frames=10, time=12, mel=4):
    frames = torch.stack([torch.full((3, 2, 2), float(i)) for i in range(num_frames)])
    fbank = torch.arange(time * mel, dtype=torch.float32).reshape(time, mel)
    return {"input_values": fbank, "pixel_values": frames, "labels": torch.tensor(3)}


def test_random_frame_keeps_one_of_the_frames_and_varies():
    torch.manual_seed(0)
    augment = AudioVisualAugmentation(fbank_noise=0.0, time_roll=False)
    picked = set()
    for _ in range(40):
        out = augment(_example())
        assert out["pixel_values"].shape == (3, 2, 2)
        value = out["pixel_values"].unique()
        assert value.numel() == 1 and 0 <= value.item() <= 9
        picked.add(int(value.item()))
    assert len(picked) > 5  # drawn across the ten frames, not always the same one


def test_single_frame_and_audio_untouched_when_switched_off():
    example = _example()
    example["pixel_values"] = example["pixel_values"][4]
    out = AudioVisualAugmentation(fbank_noise=0.0, time_roll=False)(example)
    assert torch.equal(out["pixel_values"], example["pixel_values"])
    assert torch.equal(out["input_values"], example["input_values"])


def test_fbank_noise_is_bounded_and_roll_is_a_circular_time_shift():
    torch.manual_seed(1)
    example = _example()
    noisy = AudioVisualAugmentation(random_frame=False, fbank_noise=0.1, time_roll=False)(example)
    delta = noisy["input_values"] - example["input_values"]
    assert (delta >= 0).all() and (delta < 0.1).all() and delta.abs().sum() > 0
    rolled = AudioVisualAugmentation(random_frame=False, fbank_noise=0.0, time_roll=True)
    shifts = set()
    for _ in range(20):
        out = rolled(example)["input_values"]
        matches = [k for k in range(12) if torch.equal(out, torch.roll(example["input_values"], k, dims=0))]
        assert len(matches) == 1
        shifts.add(matches[0])
    assert len(shifts) > 3
    assert example["input_values"][0, 0] == 0  # the example itself is not modified in place


def test_negative_noise_is_rejected():
    with pytest.raises(ValueError, match="fbank_noise"):
        AudioVisualAugmentation(fbank_noise=-0.1)


def test_augment_batch_draws_per_example_and_is_reproducible_under_a_seed():
    batch = AudioVisualCollator(keys=("input_values", "pixel_values", "labels"))([_example(), _example(), _example()])
    assert batch["pixel_values"].shape == (3, 10, 3, 2, 2)
    augment = AudioVisualAugmentation()
    torch.manual_seed(5)
    first = augment.augment_batch(batch)
    torch.manual_seed(5)
    second = augment.augment_batch(batch)
    assert first["pixel_values"].shape == (3, 3, 2, 2) and first["input_values"].shape == (3, 12, 4)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert torch.equal(first["labels"], batch["labels"])
    assert not torch.equal(first["input_values"][0], first["input_values"][1])  # each example its own draws

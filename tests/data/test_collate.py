import numpy as np
import pytest
import torch

from hf_av.data import AudioVisualCollator, LabelEncoder, collator_for_model


def test_stacks_equal_shapes_and_drops_strings():
    ex = [{"input_values": torch.full((5, 4), float(i)), "pixel_values": torch.zeros(2, 3, 8, 8), "labels": i,
           "sample_id": f"s{i}"} for i in range(3)]
    batch = AudioVisualCollator()(ex)
    assert set(batch) == {"input_values", "pixel_values", "labels"}
    assert batch["input_values"].shape == (3, 5, 4) and batch["input_values"][2, 0, 0] == 2
    assert batch["labels"].dtype == torch.long and batch["labels"].tolist() == [0, 1, 2]
    assert AudioVisualCollator(passthrough=("sample_id",))(ex)["sample_id"] == ["s0", "s1", "s2"]


def test_pads_variable_length_audio_and_segment_labels():
    ex = [{"input_values": torch.ones(3, 2), "labels": torch.tensor([1, 2])},
          {"input_values": torch.ones(5, 2), "labels": torch.tensor([0, 0, 28])}]
    batch = AudioVisualCollator(return_padding_masks=True, pad_to_multiple_of=4)(ex)
    assert batch["input_values"].shape == (2, 8, 2)
    assert batch["input_values"][0, 3:].abs().sum() == 0 and batch["input_values"][1, :5].sum() == 10
    assert batch["input_values_padding_mask"].tolist() == [[1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0]]
    assert batch["labels"].tolist() == [[1, 2, -100], [0, 0, 28]]


def test_vatt_text_padding_builds_attention_mask():
    collate = collator_for_model("vatt", pad_token_id=7)
    ex = [{"input_values": np.zeros(16, np.float32), "pixel_values": torch.zeros(2, 3, 4, 4),
           "input_ids": [1, 2, 3], "sample_id": "a"},
          {"input_values": np.zeros(16, np.float32), "pixel_values": torch.zeros(2, 3, 4, 4),
           "input_ids": [4], "sample_id": "b"}]
    batch = collate(ex)
    assert set(batch) == {"input_values", "pixel_values", "input_ids", "attention_mask"}
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 7, 7]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    ex[0]["attention_mask"], ex[1]["attention_mask"] = [1, 1, 1], [1]
    assert collate(ex)["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_collator_for_model_filters_keys_and_multi_hot_labels():
    collate = collator_for_model("cav-mae")
    ex = [{"input_values": torch.zeros(4, 2), "pixel_values": torch.zeros(3, 4, 4), "labels": torch.tensor([0., 1.]),
           "extra": torch.zeros(1)} for _ in range(2)]
    batch = collate(ex)
    assert set(batch) == {"input_values", "pixel_values", "labels"} and batch["labels"].dtype == torch.float32
    with pytest.raises(ValueError, match="no collator"):
        collator_for_model("nope")


def test_label_encoder_modes():
    single = LabelEncoder.from_rows([{"label": "dog"}, {"label": "cat"}])
    assert single.label_names == ["cat", "dog"] and single({"label": "dog"}) == 1
    ints = LabelEncoder.from_rows([{"label": "3"}, {"label": 1}])
    assert ints.label_names is None and ints({"label": "3"}) == 3
    multi = LabelEncoder.from_rows([{"labels": ["a", "b"]}, {"labels": ["c"]}])
    assert multi.mode == "multi" and multi({"labels": "a;c"}).tolist() == [1.0, 0.0, 1.0]
    seg = LabelEncoder.from_rows([{"segment_labels": ["x", "bg", "y"]}], background_label="bg")
    assert seg.label_names == ["x", "y", "bg"] and seg({"segment_labels": '["y", "bg"]'}).tolist() == [1, 2]
    with pytest.raises(ValueError, match="unknown label"):
        single({"label": "owl"})
    assert LabelEncoder.from_rows([{"path": "a"}]) is None

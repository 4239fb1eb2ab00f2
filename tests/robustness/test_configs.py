"""Invalid settings fail at construction, with the class and the field named (model config and preprocessing).

Model configs are `@strict` dataclasses, as in Transformers 5: they raise `StrictDataclassError` (types checked per
field, ranges in `validate_architecture()`); preprocessing classes raise `ValueError`.
"""

from __future__ import annotations

import pytest
from huggingface_hub.errors import StrictDataclassError

from hf_av import (
    CavMaeFeatureExtractor,
    CavMaeImageProcessor,
    DgSctFeatureExtractor,
    LavishFeatureExtractor,
    LavishImageProcessor,
    VattFeatureExtractor,
    VattVideoProcessor,
)
from modeling.cav_mae import CavMaeConfig

CONFIG_CASES = [
    ({"num_attention_heads": 5}, "hidden_size.*divisible by num_attention_heads"),
    ({"decoder_num_attention_heads": 3}, "decoder_hidden_size.*divisible by decoder_num_attention_heads"),
    ({"hidden_size": -768}, "hidden_size must be an integer >= 1"),
    ({"hidden_size": 0}, "hidden_size must be an integer >= 1"),
    ({"intermediate_size": -1}, "intermediate_size"),
    ({"num_modality_specific_layers": -1}, "num_modality_specific_layers must be an integer >= 0"),
    ({"num_shared_layers": 1.5}, "field 'num_shared_layers'"),
    ({"decoder_num_hidden_layers": -2}, "decoder_num_hidden_layers"),
    ({"patch_size": 0}, "patch_size"),
    ({"image_size": 225}, "image_size .225. must be a multiple of patch_size"),
    ({"audio_length": 1000}, "audio_length .1000. must be a multiple of patch_size"),
    ({"num_mel_bins": 100}, "num_mel_bins .100. must be a multiple of patch_size"),
    ({"audio_mask_ratio": 1.0}, "audio_mask_ratio must be < 1"),
    ({"visual_mask_ratio": -0.1}, "visual_mask_ratio must be in"),
    ({"visual_mask_ratio": 1.5}, "visual_mask_ratio must be in"),
    ({"audio_mask_mode": "random"}, "audio_mask_mode must be one of"),
    ({"finetuning_mode": "audio"}, "finetuning_mode must be None or one of"),
    ({"hidden_dropout_prob": 2.0}, "hidden_dropout_prob"),
    ({"layer_norm_eps": 0}, "layer_norm_eps must be > 0"),
    ({"contrastive_temperature": 0.0}, "contrastive_temperature must be > 0"),
    ({"contrastive_loss_weight": -1.0}, "contrastive_loss_weight"),
    ({"hidden_size": 30, "num_attention_heads": 5, "intermediate_size": 60}, "hidden_size must be a multiple of 4"),
    ({"norm_pix_loss": "yes"}, "Field 'norm_pix_loss' expected bool"),
    ({"trainable_position_embeddings": 1}, "field 'trainable_position_embeddings'"),
    ({"hidden_size": "768"}, "Field 'hidden_size' expected int"),
    ({"audio_mask_ratio": "0.75"}, "audio_mask_ratio"),
]


@pytest.mark.parametrize("kwargs, match", CONFIG_CASES, ids=[next(iter(c[0])) + str(i) for i, c in enumerate(CONFIG_CASES)])
def test_cav_mae_config_refuses(kwargs, match):
    with pytest.raises(StrictDataclassError, match=f"CavMaeConfig.*{match}|{match}"):
        CavMaeConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"hidden_size": 0}, {"norm_pix_loss": "yes"}])
def test_cav_mae_config_errors_are_value_errors_too(kwargs):
    # hf_av configs raised ValueError before they became @strict dataclasses; callers catching it keep working.
    with pytest.raises(ValueError, match="CavMaeConfig|norm_pix_loss"):
        CavMaeConfig(**kwargs)


def test_cav_mae_config_refuses_on_load_too(tmp_path):
    CavMaeConfig().save_pretrained(tmp_path)
    with pytest.raises(StrictDataclassError, match="num_attention_heads"):
        CavMaeConfig.from_pretrained(tmp_path, num_attention_heads=7)


PREPROCESSING_CASES = [
    (CavMaeFeatureExtractor, {"sampling_rate": 0}, "CavMaeFeatureExtractor.sampling_rate must be > 0"),
    (CavMaeFeatureExtractor, {"sampling_rate": 16000.5}, "sampling_rate must be an integer"),
    (CavMaeFeatureExtractor, {"target_length": -1}, "CavMaeFeatureExtractor.target_length must be >= 1"),
    (CavMaeFeatureExtractor, {"num_mel_bins": 0}, "num_mel_bins must be >= 1"),
    (CavMaeFeatureExtractor, {"std": 0.0}, "CavMaeFeatureExtractor.std must be > 0"),
    (CavMaeFeatureExtractor, {"mean": float("nan")}, "mean must be a finite number"),
    (CavMaeFeatureExtractor, {"frame_shift": 0}, "frame_shift must be > 0"),
    (CavMaeFeatureExtractor, {"channel": -1}, "channel must be >= 0"),
    (CavMaeFeatureExtractor, {"time_mask": -5}, "time_mask must be >= 0"),
    (CavMaeFeatureExtractor, {"window_type": "kaiser"}, "window_type must be one of"),
    (LavishFeatureExtractor, {"num_segments": 0}, "LavishFeatureExtractor.num_segments must be >= 1"),
    (LavishFeatureExtractor, {"segment_seconds": -1.0}, "segment_seconds must be > 0"),
    (LavishFeatureExtractor, {"sampling_rate": -16000}, "sampling_rate must be > 0"),
    (DgSctFeatureExtractor, {"tile_repeats": 0}, "DgSctFeatureExtractor.tile_repeats must be >= 1"),
    (DgSctFeatureExtractor, {"hop_length": 0}, "hop_length must be >= 1"),
    (DgSctFeatureExtractor, {"win_length": 2048}, "win_length .2048. must be <= n_fft"),
    (DgSctFeatureExtractor, {"f_min": 500.0, "f_max": 100.0}, "f_max must be > 500"),
    (DgSctFeatureExtractor, {"length_policy": "stretch"}, "length_policy must be one of"),
    (VattFeatureExtractor, {"sampling_rate": 0}, "VattFeatureExtractor.sampling_rate must be > 0"),
    (VattFeatureExtractor, {"num_samples": -1}, "num_steps"),
    (VattVideoProcessor, {"num_frames": 0}, "num_steps"),
    (VattVideoProcessor, {"crop_size": 0}, "crop_size must be positive"),
    (CavMaeImageProcessor, {"size": {"shortest_edge": -1}}, r"CavMaeImageProcessor.size\['shortest_edge'\] must be >= 1"),
    (CavMaeImageProcessor, {"crop_size": {"height": 0, "width": 224}}, r"crop_size\['height'\] must be >= 1"),
    (CavMaeImageProcessor, {"image_std": [0.0, 1.0, 1.0]}, "image_std must be > 0"),
    (CavMaeImageProcessor, {"image_mean": [0.5, 0.5]}, "image_mean must be 3 numbers"),
    (CavMaeImageProcessor, {"interpolation": "lanczos"}, "interpolation must be one of"),
    (CavMaeImageProcessor, {"rescale_factor": 0}, "rescale_factor must be > 0"),
    (LavishImageProcessor, {"size": {"height": 192, "width": 0}}, r"size\['width'\] must be >= 1"),
]


@pytest.mark.parametrize("cls, kwargs, match", PREPROCESSING_CASES,
                         ids=[f"{c[0].__name__}-{next(iter(c[1]))}" for c in PREPROCESSING_CASES])
def test_preprocessing_constructors_refuse(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_valid_defaults_still_construct():
    for cls in (CavMaeFeatureExtractor, LavishFeatureExtractor, DgSctFeatureExtractor, VattFeatureExtractor,
                CavMaeImageProcessor, LavishImageProcessor, VattVideoProcessor):
        cls()
    CavMaeConfig()

"""CAV-MAE models: the shared model test suite on tiny configs, plus CAV-MAE specific behaviour."""

import random
import shutil
import unittest
from pathlib import Path

import pytest
import torch
from huggingface_hub.errors import StrictDataclassError

import hf_av  # noqa: F401  (registers the Auto classes)
from modeling.cav_mae import (
    CavMaeConfig,
    CavMaeForAudioVisualClassification,
    CavMaeForPreTraining,
    CavMaeModel,
)
from modeling.cav_mae.modeling_cav_mae import contrastive_loss, random_masking, structure_audio_noise
from tests.model_test_mixin import ModelTesterMixin

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cav-mae"
B_AUDIO_TOKENS, B_VISUAL_TOKENS = 16, 4  # tiny config: 32 frames x 128 mel -> 8 x 2 patches; 32 px -> 2 x 2


def tiny_config(**overrides) -> CavMaeConfig:
    kwargs = dict(
        hidden_size=32, num_attention_heads=4, intermediate_size=64, num_modality_specific_layers=1,
        num_shared_layers=1, decoder_hidden_size=16, decoder_num_attention_heads=2, decoder_intermediate_size=32,
        decoder_num_hidden_layers=1, audio_length=32, image_size=32, num_labels=3,
    )
    kwargs.update(overrides)
    return CavMaeConfig(**kwargs)


def tiny_inputs(batch_size: int = 2, seed: int = 0, frames: int | None = None) -> dict:
    generator = torch.Generator().manual_seed(seed)
    visual_shape = (batch_size, 3, 32, 32) if frames is None else (batch_size, frames, 3, 32, 32)
    return {
        "input_values": torch.randn(batch_size, 32, 128, generator=generator),
        "pixel_values": torch.randn(*visual_shape, generator=generator),
    }


class CavMaeModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (CavMaeModel, CavMaeForPreTraining, CavMaeForAudioVisualClassification)

    def get_config(self):
        return tiny_config()

    def get_inputs(self, model_class, config, batch_size=2):
        inputs = tiny_inputs(batch_size)
        if model_class is CavMaeForPreTraining:
            generator = torch.Generator().manual_seed(1)
            inputs["audio_noise"] = torch.rand(batch_size, B_AUDIO_TOKENS, generator=generator)
            inputs["visual_noise"] = torch.rand(batch_size, B_VISUAL_TOKENS, generator=generator)
        return inputs

    def hidden_states_spec(self, model_class, config, b):
        d = config.hidden_size
        if model_class is CavMaeModel:
            return {"audio_hidden_states": (3, (b, 16, d)), "visual_hidden_states": (3, (b, 4, d)),
                    "joint_hidden_states": (2, (b, 20, d))}
        if model_class is CavMaeForPreTraining:  # 75% masking keeps 4 of 16 audio and 1 of 4 visual tokens
            return {"audio_hidden_states": (3, (b, 4, d)), "visual_hidden_states": (3, (b, 1, d)),
                    "joint_hidden_states": (2, (b, 5, d)), "decoder_hidden_states": (2, (b, 20, 16))}
        return {"audio_hidden_states": (2, (b, 16, d)), "visual_hidden_states": (2, (b, 4, d)),
                "joint_hidden_states": (2, (b, 20, d))}

    def attentions_spec(self, model_class, config, b):
        h = config.num_attention_heads
        if model_class is CavMaeModel:
            return {"audio_attentions": (2, (b, h, 16, 16)), "visual_attentions": (2, (b, h, 4, 4)),
                    "joint_attentions": (1, (b, h, 20, 20))}
        if model_class is CavMaeForPreTraining:
            return {"audio_attentions": (2, (b, h, 4, 4)), "visual_attentions": (2, (b, h, 1, 1)),
                    "joint_attentions": (1, (b, h, 5, 5)), "decoder_attentions": (1, (b, 2, 20, 20))}
        return {"audio_attentions": (1, (b, h, 16, 16)), "visual_attentions": (1, (b, h, 4, 4)),
                "joint_attentions": (1, (b, h, 20, 20))}

    def batch_independent_fields(self, model_class):
        if model_class is CavMaeModel:
            return ["audio_last_hidden_state", "visual_last_hidden_state", "joint_last_hidden_state", "audio_embeds",
                    "visual_embeds"]
        if model_class is CavMaeForPreTraining:
            return ["audio_reconstruction", "visual_reconstruction", "audio_mask", "visual_mask", "audio_ids_restore",
                    "joint_last_hidden_state", "audio_last_hidden_state", "visual_last_hidden_state"]
        return ["logits", "pooled_output"]

    def loss_kwargs(self, model_class, config, b):
        if model_class is CavMaeModel:
            return {"return_loss": True}
        if model_class is CavMaeForPreTraining:
            return {}
        return {"labels": torch.tensor([0, 2][:b])}

    def params_without_grad(self, model_class):
        if model_class is CavMaeModel:  # the contrastive loss uses the modality streams only
            return ("joint_layernorm", "shared_layers.0.layernorm_before", "shared_layers.0.layernorm_after")
        if model_class is CavMaeForAudioVisualClassification:  # multimodal mode uses the joint stream only
            return ("audio_layernorm", "visual_layernorm")
        return ()


# ---------------------------------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------------------------------
def test_config_defaults_are_released_scale_plus_plus():
    config = CavMaeConfig()
    assert (config.hidden_size, config.num_attention_heads, config.num_modality_specific_layers, config.num_shared_layers) == (768, 12, 11, 1)
    assert (config.decoder_hidden_size, config.decoder_num_hidden_layers, config.decoder_num_attention_heads) == (512, 8, 16)
    assert (config.audio_length, config.num_mel_bins, config.image_size, config.patch_size) == (1024, 128, 224, 16)
    assert config.layer_norm_eps == 1e-5 and config.hidden_act == "gelu" and config.contrastive_temperature == 0.05
    assert (config.num_audio_patches, config.num_visual_patches) == (512, 196)


@pytest.mark.parametrize(
    "field, value",
    [("num_attention_heads", 5), ("decoder_num_attention_heads", 7), ("audio_length", 1000), ("image_size", 230),
     ("num_mel_bins", 120), ("num_shared_layers", -1), ("hidden_size", -8), ("audio_mask_ratio", 1.0),
     ("visual_mask_ratio", -0.1), ("audio_mask_mode", "random"), ("contrastive_temperature", 0.0),
     ("finetuning_mode", "both"), ("norm_pix_loss", "yes"), ("unimodal_loss_weight", -0.5)],
)
def test_invalid_config_values_name_the_field(field, value):
    with pytest.raises(StrictDataclassError, match=field):
        CavMaeConfig(**{field: value})


def test_config_saved_before_the_strict_dataclass_still_loads(tmp_path):
    # config.json written by the hand-validated CavMaeConfig (hf_av main before the @strict dataclass)
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(FIXTURES / "config_saved_before_strict_config.json", folder / "config.json")
    config = CavMaeConfig.from_pretrained(folder)
    assert config.finetuning_mode == "multimodal" and config.num_labels == 3
    assert config.problem_type == "multi_label_classification" and config.trainable_position_embeddings is True
    assert config.hidden_dropout_prob == 0 and config.num_audio_patches == 512
    config.save_pretrained(tmp_path / "again")
    assert CavMaeConfig.from_pretrained(tmp_path / "again").to_dict() == config.to_dict()


def test_config_json_round_trip(tmp_path):
    config = tiny_config(num_shared_layers=2, bidirectional_contrastive_loss=True, problem_type="multi_label_classification")
    config.save_pretrained(tmp_path)
    loaded = CavMaeConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.model_type == "cav-mae"


# ---------------------------------------------------------------------------------------------------------------------
# Base model behaviour
# ---------------------------------------------------------------------------------------------------------------------
def test_single_modality_and_similarity():
    model = CavMaeModel(tiny_config()).eval()
    inputs = tiny_inputs(3)
    with torch.no_grad():
        both = model(**inputs, return_loss=True)
        audio = model(input_values=inputs["input_values"])
        visual = model(pixel_values=inputs["pixel_values"])
        audio_features = model.get_audio_features(inputs["input_values"])
        visual_features = model.get_visual_features(inputs["pixel_values"])
    assert audio.visual_last_hidden_state is None and audio.joint_last_hidden_state is None and audio.logits_per_audio is None
    assert visual.audio_last_hidden_state is None
    torch.testing.assert_close(audio.audio_last_hidden_state, both.audio_last_hidden_state, rtol=0, atol=0)
    torch.testing.assert_close(audio_features.pooler_output, both.audio_embeds, rtol=0, atol=0)
    torch.testing.assert_close(visual_features.last_hidden_state, both.visual_last_hidden_state, rtol=0, atol=0)
    torch.testing.assert_close(both.audio_embeds.norm(dim=-1), torch.ones(3))
    expected = both.audio_embeds @ both.visual_embeds.t() / 0.05
    torch.testing.assert_close(both.logits_per_audio, expected)
    torch.testing.assert_close(both.logits_per_visual, expected.t())
    nce, _ = contrastive_loss(both.audio_embeds, both.visual_embeds, 0.05)
    torch.testing.assert_close(both.loss, nce)


def test_multiple_frames_are_encoded_per_frame():
    model = CavMaeModel(tiny_config()).eval()
    inputs = tiny_inputs(2, frames=3)
    with torch.no_grad():
        out = model(**inputs)
        frame1 = model(input_values=inputs["input_values"], pixel_values=inputs["pixel_values"][:, 1])
    assert out.visual_last_hidden_state.shape == (2, 3, 4, 32)
    assert out.joint_last_hidden_state.shape == (2, 3, 20, 32)
    torch.testing.assert_close(out.visual_last_hidden_state[:, 1], frame1.visual_last_hidden_state, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.joint_last_hidden_state[:, 1], frame1.joint_last_hidden_state, atol=1e-6, rtol=0)
    pooled = torch.nn.functional.normalize(out.visual_last_hidden_state.flatten(1, 2).mean(1), dim=-1)
    torch.testing.assert_close(out.visual_embeds, pooled)


def test_bad_inputs_are_refused():
    model = CavMaeModel(tiny_config()).eval()
    with pytest.raises(ValueError, match="input_values"):
        model(input_values=torch.randn(1, 40, 128))
    with pytest.raises(ValueError, match="128"):
        model(input_values=torch.randn(1, 32, 64))
    with pytest.raises(ValueError, match="pixel_values"):
        model(pixel_values=torch.randn(1, 3, 48, 48))
    with pytest.raises(ValueError, match="needs"):
        model()


def test_sdpa_model_still_returns_attentions_on_request():
    model = CavMaeModel(tiny_config()).eval()
    assert model.config._attn_implementation == "sdpa"
    with torch.no_grad():
        out = model(**tiny_inputs(), output_attentions=True)
    assert len(out.audio_attentions) == 2 and out.audio_attentions[0].shape == (2, 4, 16, 16)


# ---------------------------------------------------------------------------------------------------------------------
# Classification
# ---------------------------------------------------------------------------------------------------------------------
def test_modes_automatic_and_explicit():
    model = CavMaeForAudioVisualClassification(tiny_config()).eval()
    inputs = tiny_inputs(2)
    with torch.no_grad():
        auto_both = model(**inputs).logits
        explicit = model(**inputs, mode="multimodal").logits
        auto_audio = model(input_values=inputs["input_values"]).logits
        audio_mode = model(**inputs, mode="audioonly").logits  # frames ignored in audioonly
        auto_visual = model(pixel_values=inputs["pixel_values"]).logits
        missing = model(input_values=inputs["input_values"], mode="missingaudioonly")
    torch.testing.assert_close(auto_both, explicit, rtol=0, atol=0)
    torch.testing.assert_close(auto_audio, audio_mode, rtol=0, atol=0)
    assert auto_visual.shape == (2, 3) and missing.logits.shape == (2, 3)
    with pytest.raises(ValueError, match="pixel_values"):
        model(input_values=inputs["input_values"], mode="videoonly")
    with pytest.raises(ValueError, match="mode must be one of"):
        model(**inputs, mode="audio")


@pytest.mark.parametrize("problem_type", ["multi_label_classification", "single_label_classification"])
def test_frame_averaging_of_probabilities(problem_type):
    model = CavMaeForAudioVisualClassification(tiny_config(problem_type=problem_type)).eval()
    inputs = tiny_inputs(2, frames=3)
    with torch.no_grad():
        out = model(**inputs)
        per_frame = torch.stack(
            [model(input_values=inputs["input_values"], pixel_values=inputs["pixel_values"][:, t]).logits for t in range(3)], 1
        )
    torch.testing.assert_close(out.per_frame_logits, per_frame, atol=1e-5, rtol=0)
    if problem_type == "multi_label_classification":
        torch.testing.assert_close(torch.sigmoid(out.logits), torch.sigmoid(per_frame).mean(1), atol=1e-6, rtol=0)
    else:
        torch.testing.assert_close(torch.softmax(out.logits, -1), torch.softmax(per_frame, -1).mean(1), atol=1e-6, rtol=0)


def test_losses_follow_problem_type():
    inputs = tiny_inputs(2)
    model = CavMaeForAudioVisualClassification(tiny_config()).eval()
    out = model(**inputs, labels=torch.tensor([1, 2]))
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(out.logits, torch.tensor([1, 2])))
    assert model.config.problem_type == "single_label_classification"
    model = CavMaeForAudioVisualClassification(tiny_config(problem_type="multi_label_classification")).eval()
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = model(**inputs, labels=targets)
    torch.testing.assert_close(out.loss, torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets))


@pytest.mark.parametrize("frames", [None, 3])
def test_unimodal_loss_weight_adds_the_audio_only_and_visual_only_losses(frames):
    inputs = tiny_inputs(2, frames=frames)
    labels = torch.tensor([1, 2])
    torch.manual_seed(0)
    model = CavMaeForAudioVisualClassification(tiny_config(unimodal_loss_weight=0.3)).eval()
    with torch.no_grad():
        out = model(**inputs, labels=labels)
        joint = model(**inputs, mode="multimodal")
        audio = model(input_values=inputs["input_values"], mode="audioonly")
        visual = model(pixel_values=inputs["pixel_values"], mode="videoonly")
    ce = torch.nn.functional.cross_entropy
    expected = ce(joint.logits, labels) + 0.3 * (ce(audio.logits, labels) + ce(visual.logits, labels))
    torch.testing.assert_close(out.loss, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.logits, joint.logits)  # predictions are the joint stream's alone
    # single-modality modes keep their plain loss; weight 0 is the original loss
    with torch.no_grad():
        audio_loss = model(input_values=inputs["input_values"], labels=labels).loss
        model.config.unimodal_loss_weight = 0.0
        plain = model(**inputs, labels=labels).loss
    torch.testing.assert_close(audio_loss, ce(audio.logits, labels))
    torch.testing.assert_close(plain, ce(joint.logits, labels))


# ---------------------------------------------------------------------------------------------------------------------
# Pre-training
# ---------------------------------------------------------------------------------------------------------------------
def test_position_tables_frozen_in_pretraining_only():
    pre = CavMaeForPreTraining(tiny_config())
    clf = CavMaeForAudioVisualClassification(tiny_config())
    assert all(not p.requires_grad for n, p in pre.named_parameters() if "position" in n)
    assert all(p.requires_grad for n, p in clf.named_parameters() if "position" in n)
    assert all(p.requires_grad for n, p in CavMaeForPreTraining(tiny_config(trainable_position_embeddings=True)).named_parameters())


def test_seeded_noise_equals_explicit_noise():
    model = CavMaeForPreTraining(tiny_config()).eval()
    inputs = tiny_inputs(2)
    torch.manual_seed(5)
    drawn = model(**inputs)
    torch.manual_seed(5)
    audio_noise, visual_noise = torch.rand(2, 16), torch.rand(2, 4)
    explicit = model(**inputs, audio_noise=audio_noise, visual_noise=visual_noise)
    torch.testing.assert_close(drawn.loss, explicit.loss, rtol=0, atol=0)
    assert torch.equal(drawn.audio_mask, explicit.audio_mask)


@pytest.mark.parametrize("mode, columns, rows", [("time", 1, 0), ("freq", 0, 6), ("tf", 1, 4)])
def test_structured_audio_masking(mode, columns, rows):
    # 8 frequency rows x 2 time columns; ratio 0.75: time -> int(2*.75)=1 column, freq -> 6 rows,
    # tf -> int(2*.75*.7)=1 column and int(8*.75*.7)=4 rows; the rest of the removal count from the noise
    noise = torch.rand(3, 16, generator=torch.Generator().manual_seed(3))
    random.seed(11)
    structured = structure_audio_noise(noise, 0.75, mode, 8, 2)
    random.seed(11)
    again = structure_audio_noise(noise, 0.75, mode, 8, 2, rng=random.Random(11))
    assert torch.equal(structured, again)  # same Python RNG stream -> same choice
    _, mask, _ = random_masking(torch.zeros(3, 16, 1), 0.75, structured)
    grid = mask.reshape(3, 8, 2)
    assert (grid.sum(dim=1) == 8).sum(dim=1).ge(columns).all()
    assert (grid.sum(dim=2) == 2).sum(dim=1).ge(rows).all()
    assert mask.sum(dim=1).eq(12).all()
    model = CavMaeForPreTraining(tiny_config(audio_mask_mode=mode)).eval()
    out = model(**tiny_inputs(2))
    assert torch.isfinite(out.loss)


def test_bidirectional_and_zero_weights():
    inputs = tiny_inputs(3)
    noise = {"audio_noise": torch.rand(3, 16), "visual_noise": torch.rand(3, 4)}
    model = CavMaeForPreTraining(tiny_config()).eval()
    with torch.no_grad():
        single = model(**inputs, **noise)
        both = model(**inputs, **noise, bidirectional_contrastive_loss=True)
        no_mae = model(**inputs, **noise, mae_loss_weight=0.0)
        no_c = model(**inputs, **noise, contrastive_loss_weight=0.0)
    a, v = single.audio_last_hidden_state.mean(1), single.visual_last_hidden_state.mean(1)
    torch.testing.assert_close(single.loss_contrastive, 0.01 * contrastive_loss(a, v, 0.05)[0])
    torch.testing.assert_close(both.loss_contrastive, 0.01 * contrastive_loss(a, v, 0.05, bidirectional=True)[0])
    assert no_mae.loss_mae == 0 and no_mae.audio_reconstruction is None
    assert no_c.loss_contrastive == 0
    torch.testing.assert_close(no_mae.loss + no_c.loss, single.loss)


def test_contrastive_stream_chained_by_default_and_original_quirk_on_request():
    config = tiny_config(num_shared_layers=2)
    model = CavMaeForPreTraining(config).eval()
    quirk = CavMaeForPreTraining(tiny_config(num_shared_layers=2, unchained_contrastive_stream=True)).eval()
    quirk.load_state_dict(model.state_dict())
    inputs, noise = tiny_inputs(2), {"audio_noise": torch.rand(2, 16), "visual_noise": torch.rand(2, 4)}
    with torch.no_grad():
        chained = model(**inputs, **noise, output_hidden_states=True)
        unchained = quirk(**inputs, **noise)
        tokens = chained.audio_hidden_states[1]  # output of the audio tower on the kept tokens
        layers = model.cav_mae.shared_layers
        expected_chained = model.cav_mae.audio_layernorm(layers[1](layers[0](tokens, norm_set="audio")[0], norm_set="audio")[0])
        expected_quirk = model.cav_mae.audio_layernorm(layers[1](tokens, norm_set="audio")[0])
    torch.testing.assert_close(chained.audio_last_hidden_state, expected_chained)
    torch.testing.assert_close(unchained.audio_last_hidden_state, expected_quirk)
    assert not torch.allclose(chained.audio_last_hidden_state, unchained.audio_last_hidden_state)
    torch.testing.assert_close(chained.loss_mae, unchained.loss_mae)  # the joint stream is unaffected


def test_a_few_training_steps_lower_the_pretraining_loss():
    torch.manual_seed(0)
    model = CavMaeForPreTraining(tiny_config(contrastive_loss_weight=0.1)).train()
    inputs = tiny_inputs(4)
    noise = {"audio_noise": torch.rand(4, 16), "visual_noise": torch.rand(4, 4)}
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(**inputs, **noise).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0] and min(losses[1:]) < losses[0], losses


def test_mask_ratio_zero_gives_a_finite_loss():
    """Nothing removed: the reconstruction term is 0 (the original code divides 0 by 0 and returns NaN)."""
    import torch

    from modeling.cav_mae import CavMaeConfig, CavMaeForPreTraining

    config = CavMaeConfig(hidden_size=32, num_attention_heads=4, intermediate_size=64, num_modality_specific_layers=1,
                          audio_length=32, image_size=32, decoder_hidden_size=16, decoder_num_attention_heads=2,
                          decoder_intermediate_size=32, decoder_num_hidden_layers=1,
                          audio_mask_ratio=0.0, visual_mask_ratio=0.0)
    torch.manual_seed(0)
    out = CavMaeForPreTraining(config)(input_values=torch.randn(2, 32, 128), pixel_values=torch.randn(2, 3, 32, 32))
    assert torch.isfinite(out.loss)
    assert out.loss_mae.item() == 0.0
    out.loss.backward()


# ---------------------------------------------------------------------------------------------------------------------
# Partial inputs: the model, not the caller, picks the mode
# ---------------------------------------------------------------------------------------------------------------------
def _with_distinct_layernorms(model):
    """A fresh model has every LayerNorm at 1/0, which makes the joint and modality streams coincide."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(1 + 0.5 * torch.randn(module.weight.shape, generator=generator))
                module.bias.copy_(0.5 * torch.randn(module.bias.shape, generator=generator))
    return model.eval()


@pytest.mark.parametrize("finetuning_mode, audio_mode, visual_mode", [
    ("multimodal", "missingaudioonly", "missingvideoonly"),
    (None, "audioonly", "videoonly"),
    ("audioonly", "audioonly", "videoonly"),
])
def test_one_modality_mode_is_decided_by_the_config(finetuning_mode, audio_mode, visual_mode):
    model = _with_distinct_layernorms(CavMaeForAudioVisualClassification(tiny_config(finetuning_mode=finetuning_mode)))
    inputs = tiny_inputs(2, frames=2)
    audio_only, visual_only = {"input_values": inputs["input_values"]}, {"pixel_values": inputs["pixel_values"]}
    with torch.no_grad():
        # a pipeline / training loop passes the processor's dict and nothing else; a user may name the mode
        for model_inputs, mode in ((audio_only, audio_mode), (visual_only, visual_mode)):
            pipeline_style = model(**model_inputs)
            direct = model(**model_inputs, mode=mode)
            torch.testing.assert_close(pipeline_style.logits, direct.logits, rtol=0, atol=0)
        both = model(**inputs).logits
    torch.testing.assert_close(both, model(**inputs, mode="multimodal").logits, rtol=0, atol=0)
    assert model.resolve_mode(None, True, False) == audio_mode
    assert model.resolve_mode(None, False, True) == visual_mode


def test_missing_modality_mode_differs_from_the_unimodal_one():
    # guards the test above against two modes that happen to compute the same thing
    model = _with_distinct_layernorms(CavMaeForAudioVisualClassification(tiny_config()))
    audio = tiny_inputs(2)["input_values"]
    with torch.no_grad():
        missing = model(input_values=audio, mode="missingaudioonly").logits
        unimodal = model(input_values=audio, mode="audioonly").logits
    assert not torch.allclose(missing, unimodal)


# ---------------------------------------------------------------------------------------------------------------------
# Output selection and Transformers accessors
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("model_class", [CavMaeModel, CavMaeForPreTraining, CavMaeForAudioVisualClassification])
def test_output_hidden_states_selects_indices(model_class):
    torch.manual_seed(0)
    model = model_class(tiny_config()).eval()
    inputs = tiny_inputs(2)
    if model_class is CavMaeForPreTraining:
        inputs.update(audio_noise=torch.rand(2, B_AUDIO_TOKENS), visual_noise=torch.rand(2, B_VISUAL_TOKENS))
    with torch.no_grad():
        everything = model(**inputs, output_hidden_states=True)
        selected = model(**inputs, output_hidden_states=[0, -1])
        single = model(**inputs, output_hidden_states=1)
    names = [name for name in everything.keys() if name.endswith("hidden_states")]
    assert names
    for name in names:
        full, chosen = everything[name], selected[name]
        assert len(chosen) == len(full)
        for index, (state, kept) in enumerate(zip(full, chosen)):
            if index in (0, len(full) - 1):
                torch.testing.assert_close(kept, state, rtol=0, atol=0)
            else:
                assert kept is None, f"{name}[{index}] was not selected"
        assert [i for i, s in enumerate(single[name]) if s is not None] == [1]
    torch.testing.assert_close(selected.loss if selected.loss is not None else selected[0],
                               everything.loss if everything.loss is not None else everything[0])


@pytest.mark.parametrize("bad", ["all", [0, "1"], 1.5, [True]])
def test_output_hidden_states_rejects_other_values(bad):
    model = CavMaeModel(tiny_config()).eval()
    with pytest.raises(ValueError, match="output_hidden_states must be a bool, a layer index or a list"):
        model(**tiny_inputs(1), output_hidden_states=bad)


def test_get_image_features_is_the_visual_accessor():
    model = CavMaeModel(tiny_config()).eval()
    frames = tiny_inputs(2)["pixel_values"]
    with torch.no_grad():
        image = model.get_image_features(frames)
        visual = model.get_visual_features(frames)
    torch.testing.assert_close(image.pooler_output, visual.pooler_output, rtol=0, atol=0)
    torch.testing.assert_close(image.last_hidden_state, visual.last_hidden_state, rtol=0, atol=0)


@pytest.mark.parametrize("model_class", [CavMaeModel, CavMaeForPreTraining, CavMaeForAudioVisualClassification])
def test_input_embeddings_get_and_set(model_class):
    from modeling.common import PatchEmbeddings

    model = model_class(tiny_config())
    assert model.get_input_embeddings() is model.base_model.audio_embeddings.patch_embeddings
    replacement = PatchEmbeddings(1, 32, 16)
    model.set_input_embeddings(replacement)
    assert model.get_input_embeddings() is replacement
    assert model.base_model.audio_embeddings.patch_embeddings is replacement


# ---------------------------------------------------------------------------------------------------------------------
# Folders saved before the shared layers got their own LayerNorm names still load
# ---------------------------------------------------------------------------------------------------------------------
def _to_named_norm_set_layout(key: str) -> str:
    """A current key -> its name in the earlier layout (`layernorm_before.<set>.` inside every block)."""
    import re

    key = re.sub(r"\.(audio|visual)_layernorm_(before|after)\.", r".layernorm_\2.\1.", key)
    if ".shared_layers." in key:
        return re.sub(r"\.layernorm_(before|after)\.(weight|bias)$", r".layernorm_\1.joint.\2", key)
    return re.sub(r"\.layernorm_(before|after)\.(weight|bias)$", r".layernorm_\1.default.\2", key)


@pytest.mark.parametrize("model_class", [CavMaeForPreTraining, CavMaeForAudioVisualClassification])
def test_folders_in_the_named_norm_set_layout_still_load(tmp_path, model_class):
    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = model_class(tiny_config(num_shared_layers=2)).eval()
    model.save_pretrained(tmp_path / "old")
    weights = load_file(tmp_path / "old" / "model.safetensors")
    old_layout = {_to_named_norm_set_layout(key): tensor for key, tensor in weights.items()}
    assert "cav_mae.shared_layers.1.layernorm_before.audio.weight" in old_layout
    assert "cav_mae.audio_layers.0.layernorm_after.default.bias" in old_layout
    save_file(old_layout, tmp_path / "old" / "model.safetensors", metadata={"format": "pt"})

    loaded, info = model_class.from_pretrained(tmp_path / "old", output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    for key, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], tensor, rtol=0, atol=0, msg=key)
    inputs = tiny_inputs(2)
    if model_class is CavMaeForPreTraining:
        inputs.update(audio_noise=torch.rand(2, B_AUDIO_TOKENS), visual_noise=torch.rand(2, B_VISUAL_TOKENS))
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(**inputs).loss if "labels" in inputs else loaded(**inputs)[0],
                                   model(**inputs)[0])
    # saved again, it is written in the current layout
    loaded.save_pretrained(tmp_path / "new")
    assert set(load_file(tmp_path / "new" / "model.safetensors")) == set(weights)

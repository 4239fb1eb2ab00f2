"""DG-SCT task heads (video parsing, question answering, segmentation) through the project's shared model test suite,
plus training steps on tiny random data and each task's bad inputs. Tiny configs (4-stage towers of width 8)."""

import unittest

import pytest
import torch

from modeling.dg_sct import (
    DgSctForAudioVisualQuestionAnswering,
    DgSctForAudioVisualSegmentation,
    DgSctForAudioVisualVideoParsing,
    DgSctModel,
    DgSctQuestionAnsweringConfig,
    DgSctSegmentationConfig,
    DgSctVideoParsingConfig,
)
import hf_av  # noqa: F401  (registers the task configs and heads with the Auto classes)
from tests.model_test_mixin import ModelTesterMixin

SEGMENTS = 3
VISUAL_GRIDS = [(256, 8), (64, 16), (16, 32), (4, 64)]  # tokens, width per stage (image 32, patch 2, width 8)
AUDIO_GRIDS = [(64, 8), (16, 16), (4, 32), (1, 64)]  # spectrogram image 32, patch 4, width 8


def backbone_kwargs():
    return dict(
        vision_config=dict(image_size=32, patch_size=2, embed_dim=8, depths=[1, 1, 2, 1], num_heads=[1, 1, 2, 2],
                           window_size=4),
        audio_config=dict(spec_size=32, num_mel_bins=32, patch_embeds_hidden_size=8, depths=[1, 1, 2, 1],
                          num_attention_heads=[1, 1, 2, 2], window_size=4, n_fft=256),
        num_segments=SEGMENTS,
        num_latent_tokens=2,
        adapter_reduction_factor=2,
        class_activation_top_k=1,
        temporal_hidden_size=4,
        temporal_visual_dim=8,
        temporal_intermediate_size=8,
    )


def parsing_config():
    return DgSctVideoParsingConfig(
        **backbone_kwargs(), parsing_hidden_size=8, clip_feature_size=6, grouping_num_attention_heads=2,
        audio_grouping_depth=1, visual_grouping_depth=1, audio_visual_grouping_depth=1, num_labels=5,
    )


def question_answering_config():
    return DgSctQuestionAnsweringConfig(
        **backbone_kwargs(), question_vocab_size=20, question_max_length=6, question_embedding_size=6,
        question_hidden_size=5, qa_num_attention_heads=2, match_hidden_sizes=[8, 4, 4], num_labels=7,
    )


def segmentation_config():
    return DgSctSegmentationConfig(
        **backbone_kwargs(), decoder_channels=4, feature_map_sizes=[8, 4, 2, 1], audio_feature_size=8,
        temporal_visual_fc_dim=4, mask_head_sizes=[4, 4],
    )


def backbone_inputs(batch_size, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "input_values": torch.randn(batch_size, SEGMENTS, 11, 32, generator=generator),
        "pixel_values": torch.randn(batch_size, SEGMENTS, 3, 32, 32, generator=generator),
    }


def backbone_hidden_states_spec(b):
    return {
        "audio_hidden_states": [(b, SEGMENTS, *AUDIO_GRIDS[0])] + [(b, SEGMENTS, *grid) for grid in AUDIO_GRIDS],
        "visual_hidden_states": [(b, SEGMENTS, *VISUAL_GRIDS[0])] + [(b, SEGMENTS, *grid) for grid in VISUAL_GRIDS],
    }


def backbone_attentions_spec(b):
    # window attention: (B * segments * windows, heads, window tokens, window tokens); one entry per block
    rows = b * SEGMENTS
    visual = [(rows * 16, 1, 16, 16), (rows * 4, 1, 16, 16), (rows, 2, 16, 16), (rows, 2, 16, 16), (rows, 2, 4, 4)]
    audio = [(rows * 4, 1, 16, 16), (rows, 1, 16, 16), (rows, 2, 4, 4), (rows, 2, 4, 4), (rows, 2, 1, 1)]
    return {"visual_attentions": visual, "audio_attentions": audio}


class DgSctTaskTesterMixin(ModelTesterMixin):
    """Hierarchical towers: hidden states and attentions have one shape per stage / block, so the specs list a
    shape per entry (the shared tests assume one shape per field)."""

    def test_auto_classes(self):
        # a task config's AutoModel is its head (the base DgSctModel belongs to the plain DG-SCT config)
        import tempfile

        from transformers import AutoConfig, AutoModel

        config = self.get_config()
        head_class = self.all_model_classes[-1]
        with tempfile.TemporaryDirectory() as tmp:
            self._model(head_class, config).save_pretrained(tmp)
            self.assertEqual(type(AutoConfig.from_pretrained(tmp)), type(config))
            self.assertIsInstance(AutoModel.from_pretrained(tmp), head_class)

    def test_eager_matches_sdpa(self):
        self.skipTest(
            "DgSctModel declares _supports_sdpa = False: Transformers' Swin-V2 and CLAP audio attention have no SDPA "
            "path (the heads' own attention is nn.MultiheadAttention / explicit softmax)"
        )

    def test_meta_device_init(self):
        """The shared test, except that only BUFFERS named '*position*' must be re-created exactly: Swin-V2's
        `continuous_position_bias_mlp` is a learned (randomly initialised) weight, not a fixed table."""
        for model_class in self.all_model_classes:
            config = self.get_config()
            reference = self._model(model_class, config)
            with torch.device("meta"):
                model = model_class(config)
            model.to_empty(device="cpu")
            torch.manual_seed(0)
            model.init_weights()
            model.eval()
            buffers = dict(reference.named_buffers())
            for name, tensor in model.state_dict().items():
                self.assertFalse(tensor.is_meta, name)
                self.assertTrue(torch.isfinite(tensor).all(), name)
                if "position" in name and name in buffers:
                    self.assertTrue(torch.equal(tensor, buffers[name]), name)
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config))
            for key, tensor in output.items():
                if isinstance(tensor, torch.Tensor) and tensor.is_floating_point():
                    self.assertTrue(torch.isfinite(tensor).all(), key)

    def params_without_grad(self, model_class):
        # The original skips HTS-AT's final LayerNorm (DgSctModel documents it).
        return ("audio_encoder.norm.",)

    def batch_independent_fields(self, model_class):
        return ["audio_pooler_output", "visual_pooler_output"]

    def hidden_states_spec(self, model_class, config, batch_size):
        return backbone_hidden_states_spec(batch_size)

    def attentions_spec(self, model_class, config, batch_size):
        return backbone_attentions_spec(batch_size)

    def test_hidden_states_output(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config), output_hidden_states=True)
                plain = model(**self.get_inputs(model_class, config))
            for field, shapes in self.hidden_states_spec(model_class, config, 2).items():
                self.assertEqual([tuple(s.shape) for s in output[field]], shapes, f"{model_class.__name__}.{field}")
                self.assertIsNone(plain.get(field), f"{field} returned without output_hidden_states")

    def test_attention_outputs(self):
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            model.set_attn_implementation("eager")
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config), output_attentions=True)
            for field, shapes in self.attentions_spec(model_class, config, 2).items():
                self.assertEqual([tuple(a.shape) for a in output[field]], shapes, f"{model_class.__name__}.{field}")
                for attention in output[field]:
                    torch.testing.assert_close(attention.sum(-1), torch.ones_like(attention.sum(-1)))

    def test_a_few_training_steps_lower_the_loss(self):
        model_class = self.all_model_classes[-1]
        config = self.get_config()
        torch.manual_seed(0)
        model = model_class(config).train()
        inputs = {**self.get_inputs(model_class, config), **self.loss_kwargs(model_class, config, 2)}
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        losses = []
        for _ in range(6):
            torch.manual_seed(1)  # same dropout / drop-path / Gumbel draws every step
            loss = model(**inputs).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        self.assertLess(losses[-1], losses[0] * 0.97, losses)


class DgSctVideoParsingTest(DgSctTaskTesterMixin, unittest.TestCase):
    all_model_classes = (DgSctModel, DgSctForAudioVisualVideoParsing)

    def get_config(self):
        return parsing_config()

    def get_inputs(self, model_class, config, batch_size=2):
        inputs = backbone_inputs(batch_size)
        if model_class is DgSctForAudioVisualVideoParsing:
            inputs["clip_features"] = torch.randn(batch_size, SEGMENTS, 6, generator=torch.Generator().manual_seed(1))
        return inputs

    def batch_independent_fields(self, model_class):
        fields = super().batch_independent_fields(model_class)
        if model_class is DgSctForAudioVisualVideoParsing:
            fields += ["global_probs", "audio_probs", "visual_probs", "audio_frame_probs", "visual_frame_probs"]
        return fields

    def loss_kwargs(self, model_class, config, batch_size):
        if model_class is not DgSctForAudioVisualVideoParsing:
            return None
        labels = torch.zeros(batch_size, config.num_labels)
        labels[:, 1] = 1
        labels[0, 3] = 1
        return {"labels": labels}

    def params_without_grad(self, model_class):
        # The original discards the temporal attention's audio result, the only consumer of its visual gate.
        return super().params_without_grad(model_class) + (
            "temporal_attention.visual_encoder", "temporal_attention.visual_rnn", "temporal_attention.visual_gate"
        )


class DgSctQuestionAnsweringTest(DgSctTaskTesterMixin, unittest.TestCase):
    all_model_classes = (DgSctModel, DgSctForAudioVisualQuestionAnswering)

    def get_config(self):
        return question_answering_config()

    def get_inputs(self, model_class, config, batch_size=2):
        inputs = backbone_inputs(batch_size)
        if model_class is DgSctForAudioVisualQuestionAnswering:
            generator = torch.Generator().manual_seed(2)
            inputs["input_ids"] = torch.randint(1, 20, (batch_size, 6), generator=generator)
            inputs["negative_pixel_values"] = torch.randn(batch_size, SEGMENTS, 3, 32, 32, generator=generator)
        return inputs

    def batch_independent_fields(self, model_class):
        fields = super().batch_independent_fields(model_class)
        if model_class is DgSctForAudioVisualQuestionAnswering:
            fields += ["logits", "match_logits", "negative_match_logits", "question_embeds"]
        return fields

    def loss_kwargs(self, model_class, config, batch_size):
        if model_class is not DgSctForAudioVisualQuestionAnswering:
            return None
        return {"labels": torch.arange(batch_size) % config.num_labels}


class DgSctSegmentationTest(DgSctTaskTesterMixin, unittest.TestCase):
    all_model_classes = (DgSctModel, DgSctForAudioVisualSegmentation)

    def get_config(self):
        return segmentation_config()

    def get_inputs(self, model_class, config, batch_size=2):
        inputs = backbone_inputs(batch_size)
        if model_class is DgSctForAudioVisualSegmentation:  # frames of another size: the model resizes them
            inputs["pixel_values"] = torch.randn(batch_size, SEGMENTS, 3, 24, 24, generator=torch.Generator().manual_seed(3))
        return inputs

    def batch_independent_fields(self, model_class):
        fields = super().batch_independent_fields(model_class)
        if model_class is DgSctForAudioVisualSegmentation:
            fields += ["logits"]
        return fields

    def loss_kwargs(self, model_class, config, batch_size):
        if model_class is not DgSctForAudioVisualSegmentation:
            return None
        masks = torch.zeros(batch_size, config.mask_size, config.mask_size)
        masks[:, 8:20, 10:24] = 1
        return {"labels": masks}


# ---- bad inputs ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def question_model():
    torch.manual_seed(0)
    return DgSctForAudioVisualQuestionAnswering(question_answering_config()).eval()


def test_question_longer_than_the_maximum_is_rejected(question_model):
    inputs = backbone_inputs(1)
    with pytest.raises(ValueError, match="question has 9 tokens; the model takes at most 6"):
        question_model(**inputs, input_ids=torch.ones(1, 9, dtype=torch.long))


def test_question_missing_or_out_of_vocabulary_is_rejected(question_model):
    inputs = backbone_inputs(1)
    with pytest.raises(ValueError, match="needs the question token ids"):
        question_model(**inputs)
    with pytest.raises(ValueError, match=r"input_ids must lie in \[0, 20\)"):
        question_model(**inputs, input_ids=torch.full((1, 4), 25))


def test_masks_of_the_wrong_size_are_rejected():
    torch.manual_seed(0)
    model = DgSctForAudioVisualSegmentation(segmentation_config()).eval()
    inputs = backbone_inputs(1)
    with pytest.raises(ValueError, match=r"ground-truth masks of shape \(batch_size=1, 32, 32\).*got \(1, 24, 24\)"):
        model(**inputs, labels=torch.zeros(1, 24, 24))
    with pytest.raises(ValueError, match="masks for 2 frames but the clip has 3"):
        model(**inputs, labels=torch.zeros(1, 2, 32, 32))


def test_segment_labels_not_matching_the_clip_are_rejected():
    torch.manual_seed(0)
    model = DgSctForAudioVisualVideoParsing(parsing_config()).eval()
    inputs = {**backbone_inputs(1), "clip_features": torch.zeros(1, SEGMENTS, 6)}
    with pytest.raises(ValueError, match="Segment labels cover 5 segments but the clip has 3"):
        model(**inputs, labels=torch.zeros(1, 5, 5))
    with pytest.raises(ValueError, match=r"clip_features must have shape \(1, 3, 6\)"):
        model(**{**inputs, "clip_features": torch.zeros(1, SEGMENTS, 4)})
    segment_labels = torch.zeros(1, SEGMENTS, 5)
    segment_labels[0, 1, 2] = 1
    video_labels = torch.zeros(1, 5)
    video_labels[0, 2] = 1
    with torch.no_grad():  # per-segment labels reduce to the weak video label
        assert torch.equal(model(**inputs, labels=segment_labels).loss, model(**inputs, labels=video_labels).loss)


def test_bicubic_guide_resampling_needs_square_grids():
    config = segmentation_config()
    config.vision_config.image_size = [32, 16]
    with pytest.raises(ValueError, match="square token grids"):
        DgSctForAudioVisualSegmentation(config)


def test_answer_ids_outside_the_vocabulary_are_rejected(question_model):
    inputs = {**backbone_inputs(2), "input_ids": torch.ones(2, 6, dtype=torch.long)}
    with pytest.raises(ValueError, match=r"labels must be answer ids in \[0, 7\) \(the answer vocabulary.*got \[7, -1\]"):
        question_model(**inputs, labels=torch.tensor([7, -1]))


def test_the_answer_does_not_depend_on_the_negative_frames(question_model):
    """The negatives only feed the matching loss: inference needs none, and they change no answer logit."""
    inputs = {**backbone_inputs(2), "input_ids": torch.randint(1, 20, (2, 6), generator=torch.Generator().manual_seed(4))}
    negatives = torch.randn(2, SEGMENTS, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        alone = question_model(**inputs)
        with_negatives = question_model(**inputs, negative_pixel_values=negatives)
    assert alone.negative_match_logits is None and with_negatives.negative_match_logits is not None
    torch.testing.assert_close(alone.logits, with_negatives.logits, rtol=0, atol=0)


def test_video_parsing_from_the_video_alone():
    """`clip_feature_size=None`: no fc_st / fc_fusion, no clip features needed; it trains and infers."""
    config = parsing_config()
    config.clip_feature_size = None
    torch.manual_seed(0)
    model = DgSctForAudioVisualVideoParsing(config).train()
    assert not any("clip_projection" in name or "parsing_head.fusion" in name for name, _ in model.named_parameters())
    labels = torch.zeros(2, config.num_labels)
    labels[:, 1] = 1
    labels[0, 3] = 1
    inputs = backbone_inputs(2)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(4):
        torch.manual_seed(1)
        loss = model(**inputs, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.97, losses
    model.eval()
    with torch.no_grad():
        output = model(**inputs)
    assert output.audio_frame_probs.shape == (2, SEGMENTS, config.num_labels)
    with pytest.raises(ValueError, match=r"no clip-feature fusion \(config.clip_feature_size is None\)"):
        model(**inputs, clip_features=torch.zeros(2, SEGMENTS, 6))


def test_video_parsing_of_the_original_architecture_names_the_missing_clip_features():
    torch.manual_seed(0)
    model = DgSctForAudioVisualVideoParsing(parsing_config()).eval()
    with pytest.raises(ValueError, match=r"needs `clip_features`: this config \(clip_feature_size=6, the original "
                                         r"MGN_Net\).*r2plus1d_18.*clip_feature_size=None"):
        model(**backbone_inputs(1))
    with pytest.raises(ValueError, match="clip_feature_size must be >= 1 or None"):
        DgSctVideoParsingConfig(**backbone_kwargs(), clip_feature_size=0)

"""Transformers' own `ModelTesterMixin` (`tests/test_modeling_common.py`
of the installed release) on the two DG-SCT classes.

DG-SCT specifics: the common inputs carry both modalities (`input_values`: log-mel spectrograms per segment, and
`pixel_values`: one frame per segment, `[batch, segments, ...]`); the model needs both (each guides the other
inside the encoders). Hidden states and attentions are reported per tower (`audio_*` / `visual_*`), and their
shapes change from stage to stage (hierarchical Swin towers), so the per-stream checks here are per stage.
"""

import unittest

import torch

from modeling.dg_sct import DgSctConfig, DgSctForAudioVisualEventLocalization, DgSctModel

from .upstream import SmallModelTester, require_upstream, skip_upstream

common = require_upstream()

VISION = dict(image_size=16, patch_size=4, embed_dim=8, depths=[2, 2], num_heads=[1, 2], window_size=2)
AUDIO = dict(
    spec_size=16,
    num_mel_bins=4,  # freq_ratio 4, as the released HTS-AT
    patch_size=4,
    patch_stride=[4, 4],
    patch_embeds_hidden_size=8,
    depths=[1, 2],  # stage 1 pairs every 2nd visual block, stage 2 block by block
    num_attention_heads=[1, 2],
    window_size=2,
    hidden_size=16,
)


class DgSctModelTester(SmallModelTester):
    batch_size = 2
    num_segments = 2
    frames = 21  # log-mel frames per segment (<= spec_size * freq_ratio = 64)
    hidden_size = 16  # last-stage width of both towers
    num_hidden_layers = 2  # stages per tower
    num_attention_heads = 2
    num_labels = 3
    # per stage: tokens and widths (patch embeddings first, then each stage's output before downsampling)
    tokens = [16, 16, 4]
    widths = [8, 8, 16]

    def get_config(self) -> DgSctConfig:
        return DgSctConfig(
            vision_config=dict(VISION),
            audio_config=dict(AUDIO),
            num_segments=self.num_segments,
            num_latent_tokens=2,
            adapter_reduction_factor=2,
            adapter_conv_groups=2,
            temporal_audio_dim=8,
            temporal_visual_dim=16,
            temporal_hidden_size=8,
            temporal_intermediate_size=16,
            temporal_num_attention_heads=2,
            class_activation_top_k=1,
            num_labels=self.num_labels,
        )

    # upstream's generic checks read `seq_length`: the audio tokens of the first stage (the main input's stream)
    @property
    def seq_length(self) -> int:
        return self.tokens[0]

    def prepare_config_and_inputs_for_common(self):
        generator = torch.Generator().manual_seed(0)
        inputs = {
            "input_values": torch.randn(self.batch_size, self.num_segments, self.frames, 4, generator=generator) * 10
            - 40,
            "pixel_values": torch.randn(self.batch_size, self.num_segments, 3, 16, 16, generator=generator),
        }
        return self.get_config(), inputs


class DgSctCommonTests(common.ModelTesterMixin):
    """What the two DG-SCT test classes share (not collected: no `unittest.TestCase`)."""

    # the patch embeddings are convolutions over images / spectrograms, not token tables to resize
    test_resize_embeddings = False
    # torch.export is not a goal of the port (no exporter tests in the sdist either)
    test_torch_exportable = False
    # upstream tests that build their own inputs from the main input (`input_values`) also pass these
    additional_model_inputs = ["pixel_values"]

    def setUp(self):
        self.model_tester = DgSctModelTester(self)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is DgSctForAudioVisualEventLocalization:
            batch, segments = inputs_dict["input_values"].shape[:2]
            labels = torch.zeros(batch, segments, dtype=torch.long)
            labels[:, -1] = self.model_tester.num_labels - 1  # background (the last label) in the last segment
            inputs_dict["labels"] = labels
        return inputs_dict

    def test_model_get_set_embeddings(self):
        # upstream expects a token table; like Transformers' own Swin tests, a patch-embedding model checks that the
        # input embedding is a module and that there is no output embedding to tie
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            self.assertIsNone(model.get_output_embeddings())

    # ---- per-tower, per-stage versions of the three upstream tests that read one `hidden_states` / `attentions`
    def _forward(self, model_class, config, inputs_dict, **flags):
        model = model_class._from_config(config, attn_implementation="eager").eval()
        with torch.no_grad():
            return model(**self._prepare_for_class(inputs_dict, model_class), **flags)

    def _check_hidden_states(self, outputs):
        tester = self.model_tester
        for field in ("audio_hidden_states", "visual_hidden_states"):
            states = getattr(outputs, field)
            self.assertIsInstance(states, tuple, field)
            self.assertEqual(
                [tuple(s.shape) for s in states],
                [(tester.batch_size, tester.num_segments, n, c) for n, c in zip(tester.tokens, tester.widths)],
                field,
            )

    def _check_attentions(self, outputs):
        for field, blocks in (("audio_attentions", sum(AUDIO["depths"])), ("visual_attentions", sum(VISION["depths"]))):
            maps = getattr(outputs, field)
            self.assertIsInstance(maps, tuple, field)
            self.assertEqual(len(maps), blocks, field)
            for attention in maps:  # window attention: [batch * segments * windows, heads, 4, 4] (2 x 2 windows)
                self.assertEqual(list(attention.shape[-2:]), [4, 4], field)
                torch.testing.assert_close(attention.sum(-1), torch.ones_like(attention.sum(-1)))

    def test_hidden_states_output(self):
        for model_class in self.all_model_classes:
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            outputs = self._forward(model_class, config, inputs_dict, output_hidden_states=True)
            self._check_hidden_states(outputs)
            self.assertIsNone(outputs.audio_attentions)
            config.output_hidden_states = True  # the same through the config
            self._check_hidden_states(self._forward(model_class, config, inputs_dict))

    def test_attention_outputs(self):
        for model_class in self.all_model_classes:
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            outputs = self._forward(model_class, config, inputs_dict, output_attentions=True)
            self._check_attentions(outputs)
            self.assertIsNone(outputs.audio_hidden_states)
            config.output_attentions = True
            self._check_attentions(self._forward(model_class, config, inputs_dict))
            outputs = self._forward(model_class, config, inputs_dict, output_hidden_states=True)
            self._check_attentions(outputs)
            self._check_hidden_states(outputs)

    def test_retain_grad_hidden_states_attentions(self):
        for model_class in self.all_model_classes:
            config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
            model = model_class._from_config(config, attn_implementation="eager")
            model.train()
            outputs = model(
                **self._prepare_for_class(inputs_dict, model_class), output_hidden_states=True, output_attentions=True
            )
            kept = []
            for field in ("audio_hidden_states", "visual_hidden_states", "audio_attentions", "visual_attentions"):
                first = getattr(outputs, field)[0]
                first.retain_grad()
                kept.append((field, first))
            total = sum(v.float().mean() for v in outputs.values() if isinstance(v, torch.Tensor) and v.requires_grad)
            total.backward()
            for field, tensor in kept:
                self.assertIsNotNone(tensor.grad, f"{model_class.__name__}: no gradient reached {field}[0]")


SDPA_REASON = "Transformers' Swin-V2 and CLAP audio attention are eager-only (`_supports_sdpa = False`)"


@skip_upstream("test_eager_matches_sdpa_inference", reason=SDPA_REASON)
@skip_upstream(
    "test_training",
    reason="DgSctModel has no loss (it is the encoder the task heads share); training and gradient checkpointing "
    "run through it in DgSctForAudioVisualEventLocalizationCommonTest",
)
class DgSctModelCommonTest(DgSctCommonTests, unittest.TestCase):
    all_model_classes = (DgSctModel,)
    # DgSctModel has no loss; the head's test covers gradients. HTS-AT's final LayerNorm is never used (DG-SCT
    # pools the audio tokens without it, as the original), so not every parameter gets a gradient either way.
    test_all_params_have_gradient = False


@skip_upstream("test_eager_matches_sdpa_inference", reason=SDPA_REASON)
class DgSctForAudioVisualEventLocalizationCommonTest(DgSctCommonTests, unittest.TestCase):
    all_model_classes = (DgSctForAudioVisualEventLocalization,)
    # HTS-AT's final LayerNorm (`audio_backbone.audio_encoder.norm`) gets no gradient: DG-SCT pools the audio
    # tokens without it, as the original; test_every_other_parameter_trains checks all the others.
    test_all_params_have_gradient = False

    def test_every_other_parameter_trains(self):
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        model = DgSctForAudioVisualEventLocalization(config)
        model.train()
        inputs = self._prepare_for_class(inputs_dict, DgSctForAudioVisualEventLocalization, return_labels=True)
        model(**inputs).loss.backward()
        untrained = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
        self.assertEqual(untrained, ["dg_sct.audio_backbone.audio_encoder.norm.weight",
                                     "dg_sct.audio_backbone.audio_encoder.norm.bias"])

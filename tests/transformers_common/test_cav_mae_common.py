"""Transformers' own `ModelTesterMixin` (of the installed release) on the three CAV-MAE classes.

The template for a family's tester: see `upstream.py` for the steps. CAV-MAE specifics: the common inputs carry
both modalities (`input_values` audio fbank and `pixel_values` frames); `CavMaeForPreTraining` gets fixed mask
noise so every forward of the same inputs masks the same tokens; hidden states and attentions are checked per
stream (audio, visual, joint, and the MAE decoder in pre-training).
"""

import unittest

import torch

from modeling.cav_mae import CavMaeConfig, CavMaeForAudioVisualClassification, CavMaeForPreTraining, CavMaeModel

from .upstream import MultiStreamTests, SmallModelTester, StreamSpec, require_upstream, skip_upstream

common = require_upstream()


class CavMaeModelTester(SmallModelTester):
    batch_size = 3
    hidden_size = 32
    num_attention_heads = 4
    num_modality_specific_layers = 1
    num_shared_layers = 1
    # the upstream "is small" check reads the tester's layer count: the deepest stack of one stream
    num_hidden_layers = 2
    decoder_hidden_size = 16
    decoder_num_attention_heads = 2
    decoder_num_hidden_layers = 1
    audio_length = 32  # fbank frames
    num_mel_bins = 16
    image_size = 16
    patch_size = 8
    num_labels = 3
    mask_ratio = 0.5

    def get_config(self) -> CavMaeConfig:
        return CavMaeConfig(
            hidden_size=self.hidden_size,
            num_attention_heads=self.num_attention_heads,
            intermediate_size=37,
            num_modality_specific_layers=self.num_modality_specific_layers,
            num_shared_layers=self.num_shared_layers,
            decoder_hidden_size=self.decoder_hidden_size,
            decoder_num_attention_heads=self.decoder_num_attention_heads,
            decoder_intermediate_size=24,
            decoder_num_hidden_layers=self.decoder_num_hidden_layers,
            audio_length=self.audio_length,
            num_mel_bins=self.num_mel_bins,
            image_size=self.image_size,
            patch_size=self.patch_size,
            audio_mask_ratio=self.mask_ratio,
            visual_mask_ratio=self.mask_ratio,
            num_labels=self.num_labels,
        )

    @property
    def num_audio_patches(self) -> int:
        return (self.audio_length // self.patch_size) * (self.num_mel_bins // self.patch_size)

    @property
    def num_visual_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    # upstream's generic checks (e.g. feed-forward chunking) read `seq_length`: the audio stream, the main input
    @property
    def seq_length(self) -> int:
        return self.num_audio_patches

    def prepare_config_and_inputs_for_common(self):
        generator = torch.Generator().manual_seed(0)
        inputs = {
            "input_values": torch.randn(self.batch_size, self.audio_length, self.num_mel_bins, generator=generator),
            "pixel_values": torch.randn(self.batch_size, 3, self.image_size, self.image_size, generator=generator),
        }
        return self.get_config(), inputs

    def mask_noise(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Fixed per-token noise: the same tokens are masked on every call (random masking breaks "same output").
        Sized per call: some upstream tests grow the batch."""
        generator = torch.Generator().manual_seed(1)
        return {
            "audio_noise": torch.rand(batch_size, self.num_audio_patches, generator=generator),
            "visual_noise": torch.rand(batch_size, self.num_visual_patches, generator=generator),
        }

    def streams(self, model_class) -> dict[str, StreamSpec]:
        tower = 1 + self.num_modality_specific_layers  # tower input + each modality-specific layer
        audio_tokens, visual_tokens = self.num_audio_patches, self.num_visual_patches
        if model_class is CavMaeForPreTraining:
            # only the visible tokens enter the encoder
            audio_tokens = int(audio_tokens * (1 - self.mask_ratio))
            visual_tokens = int(visual_tokens * (1 - self.mask_ratio))

        def stream(name: str, hidden: int, layers: int, length: int, width: int, heads: int) -> StreamSpec:
            return StreamSpec(f"{name}_hidden_states", f"{name}_attentions", hidden, layers, length, width, heads)

        shared = self.num_shared_layers
        # modality streams: the tower, then (except in the classifier's multimodal mode, where only the joint
        # stream runs them) the shared layers with the modality's LayerNorm set
        modality_shared = 0 if model_class is CavMaeForAudioVisualClassification else shared
        hidden, layers = tower + modality_shared, tower - 1 + modality_shared
        specs = {
            "audio": stream("audio", hidden, layers, audio_tokens, self.hidden_size, self.num_attention_heads),
            "visual": stream("visual", hidden, layers, visual_tokens, self.hidden_size, self.num_attention_heads),
            # audio and visual tower outputs concatenated, then the shared layers with the joint LayerNorm set
            "joint": stream("joint", 1 + shared, shared, audio_tokens + visual_tokens, self.hidden_size, self.num_attention_heads),
        }
        if model_class is CavMaeForPreTraining:
            full_length = self.num_audio_patches + self.num_visual_patches
            specs["decoder"] = stream(
                "decoder", 1 + self.decoder_num_hidden_layers, self.decoder_num_hidden_layers, full_length,
                self.decoder_hidden_size, self.decoder_num_attention_heads,
            )
        return specs


class CavMaeCommonTests(MultiStreamTests, common.ModelTesterMixin):
    """What the three CAV-MAE test classes share (not collected: no `unittest.TestCase`)."""

    # the audio patch embedding is a convolution over the fbank, not a token table to resize
    test_resize_embeddings = False
    # torch.export is not a goal of the port (no exporter tests in the sdist either)
    test_torch_exportable = False

    # upstream tests that build their own inputs from the main input (`input_values`) also pass these
    additional_model_inputs = ["pixel_values"]

    def setUp(self):
        self.model_tester = CavMaeModelTester(self)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if model_class is CavMaeForPreTraining:
            inputs_dict.update(self.model_tester.mask_noise(inputs_dict["input_values"].shape[0]))
        if return_labels and model_class is CavMaeModel:
            inputs_dict["return_loss"] = True  # the contrastive loss, as CLIP's tester asks for it
        if return_labels and model_class is CavMaeForAudioVisualClassification:
            inputs_dict["labels"] = torch.zeros(inputs_dict["input_values"].shape[0], dtype=torch.long)
        return inputs_dict

    def test_model_get_set_embeddings(self):
        # upstream expects a token table (`nn.Embedding`); like Transformers' own ViT/AST tests, a patch-embedding
        # model checks that the input embedding is a module and that there is no output embedding to tie
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            output_embeddings = model.get_output_embeddings()
            self.assertTrue(output_embeddings is None or isinstance(output_embeddings, torch.nn.Linear))


@skip_upstream(
    "test_eager_matches_sdpa_inference",
    reason="reads `outputs.hidden_states`; CavMaeModel reports one list per stream (audio_/visual_/joint_"
    "hidden_states): test_eager_matches_sdpa_per_stream compares every stream instead",
)
class CavMaeModelCommonTest(CavMaeCommonTests, unittest.TestCase):
    all_model_classes = (CavMaeModel,)
    # Its only loss, the contrastive one (`return_loss=True`), pools the audio and visual streams: the joint
    # stream's LayerNorm set and `joint_layernorm` only shape `joint_last_hidden_state`, so get no gradient from it
    # (they do in CavMaeForPreTraining, whose decoder reads the joint stream).
    test_all_params_have_gradient = False


class CavMaeForPreTrainingCommonTest(CavMaeCommonTests, unittest.TestCase):
    all_model_classes = (CavMaeForPreTraining,)


class CavMaeForAudioVisualClassificationCommonTest(CavMaeCommonTests, unittest.TestCase):
    all_model_classes = (CavMaeForAudioVisualClassification,)
    # The multimodal mode (the original CAVMAEFT) runs the shared layers with the joint LayerNorm set only, so the
    # audio/visual LayerNorm sets and final audio/visual LayerNorms get no gradient from its loss.
    # test_every_parameter_trains_with_unimodal_losses checks the full set instead.
    test_all_params_have_gradient = False

    def test_every_parameter_trains_with_unimodal_losses(self):
        config, inputs_dict = self.model_tester.prepare_config_and_inputs_for_common()
        config.unimodal_loss_weight = 0.5  # adds the audio-only and visual-only losses (modality LayerNorm sets)
        model = CavMaeForAudioVisualClassification(config)
        model.train()
        model(**self._prepare_for_class(inputs_dict, CavMaeForAudioVisualClassification, return_labels=True)).loss.backward()
        untrained = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
        self.assertEqual(untrained, [], "parameters without a gradient")

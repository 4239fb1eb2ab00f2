"""Transformers' own `ModelTesterMixin` (`tests/test_modeling_common.py`
of the installed release) on the two LAVisH classes.

LAVisH specifics: the common inputs carry both modalities (`input_values` spectrogram images and `pixel_values`
frames, one segment per clip so every token-level output has one row per sample as upstream's batch tests expect);
hidden states and attentions are checked per stream (visual, audio) with `MultiStreamTests`. The tiny Swin-V2
backbone has one stage whose 4 x 4 token grid is one window, so a hidden state's token count is also the attention
map's size (upstream's shape checks read one `seq_length`); shifted windows and several stages are covered by the
project's own tests (tests/lavish, tests/common/test_swinv2_adapter_host.py).
"""

import unittest

import torch
from transformers import Swinv2Config

from modeling.lavish import LavishConfig, LavishForAudioVisualEventLocalization, LavishModel

from .upstream import MultiStreamTests, SmallModelTester, StreamSpec, require_upstream, skip_upstream

common = require_upstream()


class LavishModelTester(SmallModelTester):
    batch_size = 3
    num_segments = 1
    image_size = 8
    patch_size = 2
    hidden_size = 16  # Swin-V2 embed_dim (one stage: also the final width)
    num_attention_heads = 2
    # the upstream "is small" check reads the tester's layer count: the blocks of the one stage
    num_hidden_layers = 2
    num_labels = 5

    def get_config(self) -> LavishConfig:
        backbone = Swinv2Config(
            image_size=self.image_size, patch_size=self.patch_size, embed_dim=self.hidden_size,
            depths=[self.num_hidden_layers], num_heads=[self.num_attention_heads], window_size=4,
            drop_path_rate=0.0,
        )
        return LavishConfig(
            backbone_config=backbone, adapter_reduction_factor=4, adapter_conv_groups=2, adapter_num_latent_tokens=2,
            classifier_hidden_size=8, num_labels=self.num_labels,
        )

    @property
    def seq_length(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def prepare_config_and_inputs_for_common(self):
        generator = torch.Generator().manual_seed(0)
        size = self.image_size
        inputs = {
            "input_values": torch.randn(self.batch_size, self.num_segments, size, size, generator=generator),
            "pixel_values": torch.randn(self.batch_size, self.num_segments, 3, size, size, generator=generator),
        }
        return self.get_config(), inputs

    def streams(self, model_class) -> dict[str, StreamSpec]:
        # patch embeddings + the one stage; one attention map per block
        blocks = self.num_hidden_layers
        return {
            name: StreamSpec(f"{name}_hidden_states", f"{name}_attentions", 2, blocks, self.seq_length,
                             self.hidden_size, self.num_attention_heads)
            for name in ("visual", "audio")
        }


class LavishCommonTests(MultiStreamTests, common.ModelTesterMixin):
    """What the two LAVisH test classes share (not collected: no `unittest.TestCase`)."""

    # the patch embedding is a convolution, not a token table to resize
    test_resize_embeddings = False
    # torch.export is not a goal of the port (no exporter tests in the sdist either)
    test_torch_exportable = False
    # upstream tests that build their own inputs from the main input (`input_values`) also pass these
    additional_model_inputs = ["pixel_values"]

    def setUp(self):
        self.model_tester = LavishModelTester(self)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels and model_class is LavishForAudioVisualEventLocalization:
            batch, segments = inputs_dict["input_values"].shape[:2]
            inputs_dict["labels"] = torch.zeros(batch, segments, dtype=torch.long)
        return inputs_dict

    def test_model_get_set_embeddings(self):
        # upstream expects a token table (`nn.Embedding`); like Transformers' own Swin-V2 tests, a patch-embedding
        # model checks that the input embedding is a module and that there is no output embedding to tie
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            self.assertIsNone(model.get_output_embeddings())


NO_SDPA = (
    "LAVisH has eager attention only: Transformers' Swin-V2 window attention does not support SDPA "
    "(Swinv2PreTrainedModel declares no SDPA support) and the adapters' latent-token attention is unscaled and "
    "projection-free, written as two softmax matmuls"
)


NO_LOSS = "LavishModel has no loss (the original trains LAVisH only through a task head); see the head's test class"


@skip_upstream("test_eager_matches_sdpa_per_stream", reason=NO_SDPA)
@skip_upstream("test_training", reason=NO_LOSS)
@skip_upstream("test_training_gradient_checkpointing", reason=NO_LOSS)
class LavishModelCommonTest(LavishCommonTests, unittest.TestCase):
    all_model_classes = (LavishModel,)


@skip_upstream("test_eager_matches_sdpa_per_stream", reason=NO_SDPA)
class LavishForAudioVisualEventLocalizationCommonTest(LavishCommonTests, unittest.TestCase):
    all_model_classes = (LavishForAudioVisualEventLocalization,)

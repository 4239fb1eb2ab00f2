"""Transformers' own `ModelTesterMixin` (`tests/test_modeling_common.py`
of the installed release) on the four VATT classes.

VATT specifics: the common inputs carry all three modalities (`pixel_values` frames, `input_values` raw waveform,
`input_ids` words); each classifier is given only its own modality (its forward refuses the others); hidden states
and attentions are checked per tower (video, audio, text). DropToken is random in training (one permutation per
call), so the tiny config disables it (`drop_token_rate=0`) and dropout: upstream compares two training-mode
forwards. The modality-agnostic backbone (one shared encoder) is covered by `VattModalityAgnosticCommonTest`.
"""

import unittest

import torch

from modeling.vatt import (
    VattConfig,
    VattForAudioClassification,
    VattForPreTraining,
    VattForVideoClassification,
    VattModel,
)

from .upstream import MultiStreamTests, SmallModelTester, StreamSpec, require_upstream, skip_upstream

common = require_upstream()

CLASSIFIER_INPUTS = {VattForVideoClassification: "pixel_values", VattForAudioClassification: "input_values"}


class VattModelTester(SmallModelTester):
    batch_size = 3
    hidden_size = 16
    num_attention_heads = 2
    num_hidden_layers = 2
    text_hidden_size = 12
    text_num_attention_heads = 3
    num_frames, image_size, temporal_patch, spatial_patch = 4, 16, 2, 8
    num_samples, audio_patch = 64, 16
    num_words, vocab_size = 6, 50
    num_labels = 3
    backbone_type = "modality_specific"
    modalities = None  # all three towers


    def get_config(self) -> VattConfig:
        return VattConfig(
            backbone_type=self.backbone_type,
            modalities=self.modalities,
            video_hidden_size=self.hidden_size, video_num_hidden_layers=self.num_hidden_layers,
            video_num_attention_heads=self.num_attention_heads, video_intermediate_size=32,
            video_num_frames=self.num_frames, video_image_size=self.image_size,
            video_temporal_patch_size=self.temporal_patch, video_spatial_patch_size=self.spatial_patch,
            audio_hidden_size=self.hidden_size, audio_num_hidden_layers=self.num_hidden_layers,
            audio_num_attention_heads=self.num_attention_heads, audio_intermediate_size=32,
            audio_num_samples=self.num_samples, audio_patch_size=self.audio_patch,
            text_vocab_size=self.vocab_size, text_embedding_size=8, text_max_length=self.num_words,
            text_hidden_size=self.text_hidden_size, text_num_hidden_layers=self.num_hidden_layers,
            text_num_attention_heads=self.text_num_attention_heads, text_intermediate_size=24,
            text_relative_attention_num_buckets=8, text_relative_attention_max_distance=16,
            shared_hidden_size=self.hidden_size, shared_num_hidden_layers=self.num_hidden_layers,
            shared_num_attention_heads=self.num_attention_heads, shared_intermediate_size=32,
            shared_post_projection_size=12, video_audio_projection_size=8, video_text_projection_size=6,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, video_classifier_dropout_prob=0.0,
            drop_token_rate=0.0, num_labels=self.num_labels,
        )

    @property
    def video_tokens(self) -> int:
        return 1 + (self.num_frames // self.temporal_patch) * (self.image_size // self.spatial_patch) ** 2

    @property
    def audio_tokens(self) -> int:
        return 1 + self.num_samples // self.audio_patch

    # upstream's generic checks read `seq_length`: the video tower, the main input of the base model
    @property
    def seq_length(self) -> int:
        return self.video_tokens

    def prepare_config_and_inputs_for_common(self):
        generator = torch.Generator().manual_seed(0)
        input_ids = torch.randint(1, self.vocab_size, (self.batch_size, self.num_words), generator=generator)
        input_ids[0, -2:] = 0
        inputs = {
            "pixel_values": torch.rand(self.batch_size, self.num_frames, 3, self.image_size, self.image_size,
                                       generator=generator) * 2 - 1,
            "input_values": torch.randn(self.batch_size, self.num_samples, generator=generator) * 0.1,
            "input_ids": input_ids,
        }
        return self.get_config(), inputs

    def streams(self, model_class) -> dict[str, StreamSpec]:
        agnostic = self.backbone_type == "modality_agnostic"
        text_width = self.hidden_size if agnostic else self.text_hidden_size
        text_heads = self.num_attention_heads if agnostic else self.text_num_attention_heads
        layers = self.num_hidden_layers
        sizes = {
            "video": (self.video_tokens, self.hidden_size, self.num_attention_heads),
            "audio": (self.audio_tokens, self.hidden_size, self.num_attention_heads),
            "text": (1 + self.num_words, text_width, text_heads),
        }
        if model_class in CLASSIFIER_INPUTS:
            tower = "video" if model_class is VattForVideoClassification else "audio"
            return {tower: StreamSpec("hidden_states", "attentions", layers + 1, layers, *sizes[tower])}
        return {
            name: StreamSpec(f"{name}_hidden_states", f"{name}_attentions", layers + 1, layers, *size)
            for name, size in sizes.items()
        }


class VattCommonTests(MultiStreamTests, common.ModelTesterMixin):
    """What the VATT test classes share (not collected: no `unittest.TestCase`)."""

    # the main inputs are a patch convolution (video / audio); the word table is frozen word2vec, not a vocabulary
    # the model may grow (VATT has no output embeddings to tie to it either)
    test_resize_embeddings = False
    # torch.export is not a goal of the port (no exporter tests in the sdist either)
    test_torch_exportable = False
    # upstream tests that build their own inputs from the main input (`pixel_values`) also pass these
    additional_model_inputs = ["input_values", "input_ids"]
    model_tester_class = VattModelTester
    # upstream's feature-shape checks read a composite config (`audio_config.hidden_size`, ...); VATT's config is
    # flat and every tower prepends its AGG token. The accessors' shapes and values are checked in
    # tests/vatt/test_modeling_vatt.py::test_feature_accessors_return_joint_space_embeddings.
    skip_test_audio_features_output_shape = True
    skip_test_video_features_output_shape = True
    skip_test_image_features_output_shape = True

    def setUp(self):
        self.model_tester = self.model_tester_class(self)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if model_class in CLASSIFIER_INPUTS:
            name = CLASSIFIER_INPUTS[model_class]
            inputs_dict = {key: value for key, value in inputs_dict.items() if key in (name, "labels")}
            if return_labels:
                batch_size = inputs_dict[name].shape[0]
                if model_class is VattForAudioClassification:  # multi-label: 0/1 per class
                    inputs_dict["labels"] = torch.zeros(batch_size, self.model_tester.num_labels)
                else:
                    inputs_dict["labels"] = torch.zeros(batch_size, dtype=torch.long)
        return inputs_dict

    def test_model_get_set_embeddings(self):
        # upstream expects a token table; the classifiers' input embedding is the patch convolution (like
        # Transformers' own ViT / AST tests: a module, and no output embedding to tie)
        config, _ = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config)
            self.assertIsInstance(model.get_input_embeddings(), torch.nn.Module)
            self.assertIsNone(model.get_output_embeddings())


_TEXT_FEATURES = (
    "upstream reads a composite config (`config.text_config.hidden_size`) and expects one state per word; VATT's "
    "config is flat and the text tower prepends its AGG token (words + 1 states): shapes and values of "
    "get_text_features are checked in tests/vatt/test_modeling_vatt.py"
)
_VIDEO_FEATURES = (
    "upstream feeds the VLM input name `pixel_values_videos`; VATT's video accessor takes `pixel_values` like its "
    "forward. The same method is upstream-tested as get_image_features (an alias), and in tests/vatt"
)
_MULTI_STREAM_SDPA = (
    "reads `outputs.hidden_states`; VATT's base and pre-training models report one list per tower (video_/audio_/"
    "text_hidden_states): test_eager_matches_sdpa_per_stream compares every tower instead"
)


@skip_upstream("test_eager_matches_sdpa_inference", reason=_MULTI_STREAM_SDPA)
@skip_upstream("test_get_text_features_output", reason=_TEXT_FEATURES)
@skip_upstream("test_get_video_features", reason=_VIDEO_FEATURES)
@skip_upstream(
    "test_training",
    reason="VattModel has no loss (the base model, like ViTModel, which upstream skips by its mapping); VATT trains "
    "through VattForPreTraining, whose test_training runs below",
)
class VattModelCommonTest(VattCommonTests, unittest.TestCase):
    all_model_classes = (VattModel,)
    # the base model has no loss; its heads are trained through VattForPreTraining (tested below)
    test_all_params_have_gradient = False


@skip_upstream("test_eager_matches_sdpa_inference", reason=_MULTI_STREAM_SDPA)
class VattForPreTrainingCommonTest(VattCommonTests, unittest.TestCase):
    all_model_classes = (VattForPreTraining,)


class VattVideoClassifierTester(VattModelTester):
    modalities = ["visual"]  # a converted fine-tuned classifier holds its own tower only


class VattAudioClassifierTester(VattModelTester):
    modalities = ["audio"]


class VattForVideoClassificationCommonTest(VattCommonTests, unittest.TestCase):
    all_model_classes = (VattForVideoClassification,)
    model_tester_class = VattVideoClassifierTester


class VattForAudioClassificationCommonTest(VattCommonTests, unittest.TestCase):
    all_model_classes = (VattForAudioClassification,)
    model_tester_class = VattAudioClassifierTester


class VattModalityAgnosticTester(VattModelTester):
    backbone_type = "modality_agnostic"


@skip_upstream("test_eager_matches_sdpa_inference", reason=_MULTI_STREAM_SDPA)
class VattModalityAgnosticCommonTest(VattCommonTests, unittest.TestCase):
    """The modality-agnostic backbone (one encoder shared by the three modalities), through pre-training."""

    all_model_classes = (VattForPreTraining,)
    model_tester_class = VattModalityAgnosticTester

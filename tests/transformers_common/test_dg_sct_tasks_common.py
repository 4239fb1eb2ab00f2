"""Transformers' own `ModelTesterMixin` (`tests/test_modeling_common.py` of the installed release) on DG-SCT's other
task heads: `DgSctForAudioVisualVideoParsing` (AVVP), `DgSctForAudioVisualQuestionAnswering` (AVQA) and
`DgSctForAudioVisualSegmentation` (AVS).

They share the encoders, the tiny sizes and the per-tower, per-stage hidden-state / attention checks of
`test_dg_sct_common.py`; each adds its own inputs (AVVP `clip_features`, AVQA question `input_ids`) and labels.
"""

import unittest

import torch

from modeling.dg_sct import (
    DgSctForAudioVisualQuestionAnswering,
    DgSctForAudioVisualSegmentation,
    DgSctForAudioVisualVideoParsing,
    DgSctQuestionAnsweringConfig,
    DgSctSegmentationConfig,
    DgSctVideoParsingConfig,
)

from .test_dg_sct_common import AUDIO, SDPA_REASON, VISION, DgSctCommonTests, DgSctModelTester
from .upstream import skip_upstream

SHARED = dict(
    num_latent_tokens=2,
    adapter_reduction_factor=2,
    adapter_conv_groups=2,
    temporal_visual_dim=16,
    temporal_hidden_size=8,
    temporal_intermediate_size=16,
    temporal_num_attention_heads=2,
    class_activation_top_k=1,
)


class _TaskTester(DgSctModelTester):
    config_class = None
    head_kwargs: dict = {}

    def get_config(self):
        return self.config_class(
            vision_config=dict(VISION), audio_config=dict(AUDIO), num_segments=self.num_segments, **SHARED,
            **self.head_kwargs,
        )

    def extra_inputs(self, generator) -> dict:
        return {}

    def prepare_config_and_inputs_for_common(self):
        config, inputs = super().prepare_config_and_inputs_for_common()
        inputs.update(self.extra_inputs(torch.Generator().manual_seed(1)))
        return self.get_config(), inputs


class VideoParsingTester(_TaskTester):
    config_class = DgSctVideoParsingConfig
    num_labels = 3
    head_kwargs = dict(parsing_hidden_size=8, clip_feature_size=6, grouping_num_attention_heads=2,
                       audio_grouping_depth=1, visual_grouping_depth=1, audio_visual_grouping_depth=1, num_labels=3)

    def extra_inputs(self, generator):
        return {"clip_features": torch.randn(self.batch_size, self.num_segments, 6, generator=generator)}


class QuestionAnsweringTester(_TaskTester):
    config_class = DgSctQuestionAnsweringConfig
    num_labels = 4
    head_kwargs = dict(question_vocab_size=11, question_max_length=5, question_embedding_size=6,
                       question_hidden_size=5, qa_num_attention_heads=2, match_hidden_sizes=[8, 4, 4], num_labels=4)

    def extra_inputs(self, generator):
        return {"input_ids": torch.randint(1, 11, (self.batch_size, 5), generator=generator)}


class SegmentationTester(_TaskTester):
    config_class = DgSctSegmentationConfig
    num_labels = 2
    head_kwargs = dict(decoder_channels=4, feature_map_sizes=[4, 2], fusion_stages=[0, 1], audio_feature_size=8,
                       temporal_visual_fc_dim=4, mask_head_sizes=[4, 4])


class DgSctTaskCommonTests(DgSctCommonTests):
    model_tester_class = None

    def setUp(self):
        self.model_tester = self.model_tester_class(self)

    def _prepare_for_class(self, inputs_dict, model_class, return_labels=False):
        inputs_dict = dict(inputs_dict)
        if return_labels:
            batch, segments = inputs_dict["pixel_values"].shape[:2]
            labels = self.task_labels(batch, segments)
            if labels is not None:
                inputs_dict["labels"] = labels
        return inputs_dict

    def task_labels(self, batch, segments):
        return None


# the AVVP head's temporal attention discards its audio result, the only consumer of the visual gate branch (as the
# original); the AVS head runs on every stage's tokens (no pooled-only path) -- both as the test_modeling suite says
NOT_EVERY_PARAMETER = "parameters outside the forward's gradient path exist by design (see tests/dg_sct/test_modeling_dg_sct_tasks.py)"


@skip_upstream("test_eager_matches_sdpa_inference", reason=SDPA_REASON)
class DgSctForAudioVisualVideoParsingCommonTest(DgSctTaskCommonTests, unittest.TestCase):
    all_model_classes = (DgSctForAudioVisualVideoParsing,)
    model_tester_class = VideoParsingTester
    test_all_params_have_gradient = False  # HTS-AT's unused final norm, the unused visual-gate branch

    def task_labels(self, batch, segments):
        labels = torch.zeros(batch, self.model_tester.num_labels)
        labels[:, 1] = 1
        return labels


@skip_upstream("test_eager_matches_sdpa_inference", reason=SDPA_REASON)
class DgSctForAudioVisualQuestionAnsweringCommonTest(DgSctTaskCommonTests, unittest.TestCase):
    all_model_classes = (DgSctForAudioVisualQuestionAnswering,)
    model_tester_class = QuestionAnsweringTester
    test_all_params_have_gradient = False  # HTS-AT's unused final norm

    def task_labels(self, batch, segments):
        return torch.arange(batch) % self.model_tester.num_labels


@skip_upstream("test_eager_matches_sdpa_inference", reason=SDPA_REASON)
class DgSctForAudioVisualSegmentationCommonTest(DgSctTaskCommonTests, unittest.TestCase):
    all_model_classes = (DgSctForAudioVisualSegmentation,)
    model_tester_class = SegmentationTester
    test_all_params_have_gradient = False  # HTS-AT's unused final norm

    def task_labels(self, batch, segments):
        masks = torch.zeros(batch, 16, 16)
        masks[:, 4:10, 5:12] = 1
        return masks

"""VATT models: the shared model test suite on tiny configs (modality-specific and modality-agnostic), plus VATT
specific behaviour (DropToken, position-table resampling, losses, classifier views, bad input)."""

import unittest

import pytest
import torch

import hf_av  # noqa: F401  (registers VATT with the Auto classes)

from modeling.vatt import (
    VattConfig,
    VattForAudioClassification,
    VattForPreTraining,
    VattForVideoClassification,
    VattModel,
    contrastive_nce_loss,
    resample_position_table,
)
from tests.model_test_mixin import ModelTesterMixin

# tiny clip: 4 frames x 16 x 16 px in 2 x 8 x 8 patches -> 2 x 2 x 2 = 8 video tokens; 64 samples / 16 -> 4 audio
# tokens; 6 words. Every tower adds its AGG token.
VIDEO_TOKENS, AUDIO_TOKENS, WORDS = 8, 4, 6
NUM_LABELS = 3


def tiny_config(backbone_type: str = "modality_specific", **overrides) -> VattConfig:
    kwargs = dict(
        backbone_type=backbone_type,
        video_hidden_size=16, video_num_hidden_layers=2, video_num_attention_heads=2, video_intermediate_size=32,
        video_num_frames=4, video_image_size=16, video_temporal_patch_size=2, video_spatial_patch_size=8,
        audio_hidden_size=16, audio_num_hidden_layers=2, audio_num_attention_heads=2, audio_intermediate_size=32,
        audio_num_samples=64, audio_patch_size=16,
        text_vocab_size=50, text_embedding_size=8, text_max_length=WORDS, text_hidden_size=12,
        text_num_hidden_layers=2, text_num_attention_heads=3, text_intermediate_size=24,
        text_relative_attention_num_buckets=8, text_relative_attention_max_distance=16,
        shared_hidden_size=16, shared_num_hidden_layers=2, shared_num_attention_heads=2, shared_intermediate_size=32,
        shared_post_projection_size=12,
        video_audio_projection_size=8, video_text_projection_size=6,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, video_classifier_dropout_prob=0.0,
        num_labels=NUM_LABELS,
    )
    kwargs.update(overrides)
    return VattConfig(**kwargs)


def tiny_inputs(batch_size: int = 2, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 50, (batch_size, WORDS), generator=generator)
    input_ids[0, -2:] = 0  # padding in the first text
    return {
        "pixel_values": torch.rand(batch_size, 4, 3, 16, 16, generator=generator) * 2 - 1,
        "input_values": torch.randn(batch_size, 64, generator=generator) * 0.1,
        "input_ids": input_ids,
    }


class _VattTesterBase(ModelTesterMixin):
    all_model_classes = (VattModel, VattForPreTraining, VattForVideoClassification, VattForAudioClassification)
    backbone_type = "modality_specific"

    def get_config(self):
        return tiny_config(self.backbone_type)

    def get_inputs(self, model_class, config, batch_size=2):
        inputs = tiny_inputs(batch_size)
        if model_class is VattForVideoClassification:
            return {"pixel_values": inputs["pixel_values"]}
        if model_class is VattForAudioClassification:
            return {"input_values": inputs["input_values"]}
        return inputs

    def _widths(self, config):
        if config.is_modality_agnostic:
            d = config.shared_hidden_size
            heads = config.shared_num_attention_heads
            return {"video": d, "audio": d, "text": d}, {"video": heads, "audio": heads, "text": heads}
        return ({"video": config.video_hidden_size, "audio": config.audio_hidden_size, "text": config.text_hidden_size},
                {"video": config.video_num_attention_heads, "audio": config.audio_num_attention_heads,
                 "text": config.text_num_attention_heads})

    def _tokens(self):
        return {"video": VIDEO_TOKENS + 1, "audio": AUDIO_TOKENS + 1, "text": WORDS + 1}

    def hidden_states_spec(self, model_class, config, b):
        widths, _ = self._widths(config)
        tokens = self._tokens()
        if model_class is VattForVideoClassification:
            return {"hidden_states": (3, (b, tokens["video"], widths["video"]))}
        if model_class is VattForAudioClassification:
            return {"hidden_states": (3, (b, tokens["audio"], widths["audio"]))}
        return {f"{m}_hidden_states": (3, (b, tokens[m], widths[m])) for m in ("video", "audio", "text")}

    def attentions_spec(self, model_class, config, b):
        _, heads = self._widths(config)
        tokens = self._tokens()
        if model_class is VattForVideoClassification:
            return {"attentions": (2, (b, heads["video"], tokens["video"], tokens["video"]))}
        if model_class is VattForAudioClassification:
            return {"attentions": (2, (b, heads["audio"], tokens["audio"], tokens["audio"]))}
        return {f"{m}_attentions": (2, (b, heads[m], tokens[m], tokens[m])) for m in ("video", "audio", "text")}

    def batch_independent_fields(self, model_class):
        if model_class in (VattForVideoClassification, VattForAudioClassification):
            return ["logits", "probabilities", "pooled_output"]
        return ["video_audio_embeds", "video_text_embeds", "audio_embeds", "text_embeds", "video_last_hidden_state",
                "audio_last_hidden_state", "text_last_hidden_state"]

    def loss_kwargs(self, model_class, config, batch_size):
        if model_class is VattForPreTraining:
            return {}  # the contrastive loss is always computed
        if model_class is VattForVideoClassification:
            return {"labels": torch.arange(batch_size) % NUM_LABELS}
        if model_class is VattForAudioClassification:
            return {"labels": (torch.arange(batch_size * NUM_LABELS).reshape(batch_size, NUM_LABELS) % 2).float()}
        return None

    def params_without_grad(self, model_class):
        # a classifier holds the whole base model (so pre-trained folders load into it) but runs one tower
        if model_class is VattForVideoClassification:
            return ("audio_", "text_", "video_audio_projection", "video_text_projection")
        if model_class is VattForAudioClassification:
            return ("video_", "text_", "audio_projection")
        return ()

    def test_meta_device_init(self):
        # Same as the shared test except one check: the shared test requires tables named "position" to be
        # re-created exactly, which holds for fixed sin-cos tables. VATT's position tables are learned and start
        # random (truncated normal, std D^-0.5, as the original), so here they must be finite and of that scale.
        for model_class in self.all_model_classes:
            config = self.get_config()
            with torch.device("meta"):
                model = model_class(config)
            self.assertTrue(all(p.device.type == "meta" for p in model.parameters()))
            model.to_empty(device="cpu")
            torch.manual_seed(0)
            model.init_weights()
            model.eval()
            for name, tensor in model.state_dict().items():
                self.assertFalse(tensor.is_meta, name)
                self.assertTrue(torch.isfinite(tensor).all(), name)
                if name.endswith("_position_embeddings"):
                    bound = 2 * tensor.shape[-1] ** -0.5
                    self.assertLessEqual(tensor.abs().max().item(), bound + 1e-6, name)
                    self.assertGreater(tensor.std().item(), 0.0, name)
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config))
            for key, value in output.items():
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    self.assertTrue(torch.isfinite(value).all(), key)


class VattModalitySpecificTest(_VattTesterBase, unittest.TestCase):
    backbone_type = "modality_specific"


class VattModalityAgnosticTest(_VattTesterBase, unittest.TestCase):
    backbone_type = "modality_agnostic"


# ---------------------------------------------------------------------------------------------------------------------
# VATT-specific behaviour
# ---------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backbone_type", ["modality_specific", "modality_agnostic"])
def test_drop_token_only_in_training(backbone_type):
    config = tiny_config(backbone_type, video_num_frames=8, drop_token_rate=0.5)  # tables 4 x 2 x 2 = 16 buckets
    torch.manual_seed(0)
    model = VattModel(config)
    pixel_values = torch.rand(2, 8, 3, 16, 16)
    model.train()
    trained = model.encode_video(pixel_values)
    assert trained.last_hidden_state.shape[1] == 1 + 8  # AGG + int(0.5 * 16)
    model.eval()
    assert model.encode_video(pixel_values).last_hidden_state.shape[1] == 1 + 16
    model.train()
    model.video_embeddings.drop_token_rate = 0.0
    assert model.encode_video(pixel_values).last_hidden_state.shape[1] == 1 + 16


def test_position_table_resampling_interpolates_the_table():
    torch.manual_seed(0)
    table = torch.randn(16, 5)
    assert resample_position_table(table, 16) is table
    # the spline passes through the table: queries j/8 are the rows 2j/16
    torch.testing.assert_close(resample_position_table(table, 8), table[::2], atol=1e-5, rtol=0)
    assert resample_position_table(table, 23).shape == (23, 5)


def test_other_clip_sizes_resample_the_tables():
    model = VattModel(tiny_config()).eval()
    with torch.no_grad():
        video = model.encode_video(torch.rand(1, 6, 3, 24, 16))  # 3 x 3 x 2 patches, tables are 2 x 2 x 2
        audio = model.encode_audio(torch.randn(1, 96))  # 6 patches, table of 4
        text = model.encode_text(torch.tensor([[3, 4, 0]]))  # shorter text: fine
    assert video.last_hidden_state.shape == (1, 1 + 18, 16) and video.grid == (3, 3, 2)
    assert audio.last_hidden_state.shape == (1, 1 + 6, 16)
    assert text.last_hidden_state.shape == (1, 1 + 3, 12)


def _reference_mil_nce(video, other, temperature, mask=None):
    """Straight loops over the original's definition (AsymmetricNCE on one replica)."""
    video = torch.nn.functional.normalize(video, dim=-1).double()
    other = torch.nn.functional.normalize(other, dim=-1).double()
    batch, candidates = other.shape[:2]
    valid = torch.ones(batch, dtype=torch.float64) if mask is None else mask.double()
    losses = []
    for i in range(batch):
        positives = [video[i] @ other[i, l] / temperature for l in range(candidates)]
        scores = []
        for c in range(batch):
            for l in range(candidates):
                scores.append(video[i] @ other[c, l] / temperature - (1 - valid[c]) * 1e9)
        for c in range(batch):
            for l in range(candidates):
                scores.append(video[c] @ other[i, l] / temperature - (1 - valid[i]) * 1e9)
        loss = torch.logsumexp(torch.stack(scores), 0) - torch.logsumexp(torch.stack(positives), 0)
        losses.append(loss * valid[i] * (batch / valid.sum()))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("with_mask", [False, True])
def test_mil_nce_matches_the_original_definition(with_mask):
    generator = torch.Generator().manual_seed(3)
    video, text = torch.randn(4, 6, generator=generator), torch.randn(4, 3, 6, generator=generator)
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0]) if with_mask else None
    expected = _reference_mil_nce(video, text, 0.07, mask)
    torch.testing.assert_close(contrastive_nce_loss(video, text, 0.07, mask).double(), expected, atol=1e-5, rtol=1e-6)
    # NCE is MIL-NCE with one candidate
    audio = torch.randn(4, 6, generator=generator)
    torch.testing.assert_close(contrastive_nce_loss(video, audio, 0.07).double(),
                               _reference_mil_nce(video, audio[:, None], 0.07), atol=1e-5, rtol=1e-6)


def test_pretraining_loss_is_the_weighted_mean_with_several_narrations():
    torch.manual_seed(0)
    model = VattForPreTraining(tiny_config(video_audio_loss_weight=1.0, video_text_loss_weight=3.0)).eval()
    inputs = tiny_inputs(2)
    inputs["input_ids"] = torch.randint(1, 50, (2, 3, WORDS))  # 3 narrations per clip
    with torch.no_grad():
        out = model(**inputs)
    assert out.text_embeds.shape == (2, 3, 6) and out.logits_per_video_text.shape == (2, 6)
    torch.testing.assert_close(out.loss, (out.loss_video_audio + 3.0 * out.loss_video_text) / 4.0)
    assert VattForPreTraining.accepts_loss_kwargs is False  # Trainer divides by the accumulation steps itself


def test_classifiers_average_logits_over_views():
    torch.manual_seed(0)
    video_model = VattForVideoClassification(tiny_config()).eval()
    views = torch.rand(2, 3, 4, 3, 16, 16)
    with torch.no_grad():
        out = video_model(views)
        single = video_model(views[:, 1]).logits
    torch.testing.assert_close(out.per_view_logits[:, 1], single, atol=1e-6, rtol=0)
    torch.testing.assert_close(out.logits, out.per_view_logits.mean(1))
    torch.testing.assert_close(out.probabilities, out.logits.softmax(-1))
    audio_model = VattForAudioClassification(tiny_config()).eval()
    with torch.no_grad():
        out = audio_model(torch.randn(2, 4, 64))
    torch.testing.assert_close(out.probabilities, out.logits.sigmoid())
    assert out.per_view_logits.shape == (2, 4, NUM_LABELS)


@pytest.mark.parametrize("model_class", [VattForVideoClassification, VattForAudioClassification])
def test_gradient_accumulation_loss_is_exact(model_class):
    torch.manual_seed(0)
    model = model_class(tiny_config()).eval()
    inputs = tiny_inputs(4)
    key = "pixel_values" if model_class is VattForVideoClassification else "input_values"
    if model_class is VattForVideoClassification:
        labels = torch.tensor([0, 1, 2, 1])
        num_items = labels.numel()
    else:
        labels = torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]]).float()
        num_items = labels.numel()  # Trainer counts label entries
    with torch.no_grad():
        full = model(inputs[key], labels=labels).loss
        halves = sum(model(inputs[key][i:i + 2], labels=labels[i:i + 2], num_items_in_batch=num_items).loss
                     for i in (0, 2))
    torch.testing.assert_close(halves, full, atol=1e-6, rtol=1e-6)


def test_word_embeddings_stay_frozen_after_loading(tmp_path):
    model = VattModel(tiny_config())
    assert not model.text_embeddings.word_embeddings.weight.requires_grad
    model.save_pretrained(tmp_path)
    reloaded = VattForPreTraining.from_pretrained(tmp_path)
    assert not reloaded.vatt.text_embeddings.word_embeddings.weight.requires_grad
    trainable = VattModel(tiny_config(trainable_word_embeddings=True))
    assert trainable.text_embeddings.word_embeddings.weight.requires_grad


def test_feature_accessors_return_joint_space_embeddings():
    torch.manual_seed(0)
    model = VattModel(tiny_config()).eval()
    inputs = tiny_inputs(2)
    with torch.no_grad():
        out = model(**inputs)
        torch.testing.assert_close(model.get_video_features(inputs["pixel_values"]).pooler_output,
                                   out.video_audio_embeds)
        torch.testing.assert_close(model.get_video_features(inputs["pixel_values"], space="text").pooler_output,
                                   out.video_text_embeds)
        torch.testing.assert_close(model.get_image_features(inputs["pixel_values"]).pooler_output,
                                   out.video_audio_embeds)
        torch.testing.assert_close(model.get_audio_features(inputs["input_values"]).pooler_output, out.audio_embeds)
        torch.testing.assert_close(model.get_text_features(inputs["input_ids"]).pooler_output, out.text_embeds)
    expected = torch.nn.functional.normalize(out.video_audio_embeds, dim=-1) @ \
        torch.nn.functional.normalize(out.audio_embeds, dim=-1).T / 0.07
    torch.testing.assert_close(out.logits_per_video_audio, expected)
    # one modality alone still gets its joint-space embedding (e.g. text queries for retrieval)
    with torch.no_grad():
        text_only = model(input_ids=inputs["input_ids"])
    torch.testing.assert_close(text_only.text_embeds, out.text_embeds)
    assert text_only.logits_per_video_text is None and text_only.video_audio_embeds is None
    # the padding mask defaults to ids != 0, as the original
    with torch.no_grad():
        explicit = model.get_text_features(inputs["input_ids"], attention_mask=(inputs["input_ids"] != 0).long())
    torch.testing.assert_close(explicit.pooler_output, out.text_embeds)


def test_single_modality_models_hold_one_tower():
    video_only = VattForVideoClassification(tiny_config(modalities=["visual"]))
    names = [n for n, _ in video_only.named_parameters()]
    assert not any("audio" in n or "text" in n or "projection" in n for n in names)
    with pytest.raises(ValueError, match="no audio tower"):
        video_only.vatt(input_values=torch.randn(1, 64))
    with pytest.raises(ValueError, match="needs the audio tower"):
        VattForAudioClassification(tiny_config(modalities=["visual"]))
    with pytest.raises(ValueError, match="no common-space head"):
        video_only.vatt.get_video_features(torch.rand(1, 4, 3, 16, 16))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m(pixel_values=torch.rand(1, 3, 3, 16, 16)), r"frames \(3\) must be a multiple of 2"),
        (lambda m: m(pixel_values=torch.rand(1, 4, 16, 16, 3)), r"channels first"),
        (lambda m: m(input_values=torch.randn(1, 70)), r"number of samples \(70\) must be a multiple"),
        (lambda m: m(input_values=torch.randn(1, 64, 1)), r"original TF layout"),
        (lambda m: m(input_ids=torch.ones(1, WORDS + 1, dtype=torch.long)), r"more than this model's maximum"),
        (lambda m: m(pixel_values=torch.rand(1, 2, 4, 3, 16, 16)), r"2 views per clip"),
        (lambda m: m(), r"needs pixel_values"),
        (lambda m: m.get_video_features(torch.rand(1, 4, 3, 16, 16), space="visual"), r"space must be"),
    ],
)
def test_bad_input_is_a_clear_error(call, message):
    model = VattModel(tiny_config()).eval()
    with pytest.raises(ValueError, match=message):
        call(model)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"video_hidden_size": 15}, "divisible"),
        ({"modalities": ["video"]}, "modalities"),
        ({"backbone_type": "unified"}, "backbone_type"),
        ({"drop_token_rate": 1.0}, "drop_token_rate"),
        ({"video_num_frames": 5}, "multiple of video_temporal_patch_size"),
        ({"contrastive_temperature": 0.0}, "contrastive_temperature"),
    ],
)
def test_invalid_config_is_refused(overrides, message):
    with pytest.raises(Exception, match=message):
        tiny_config(**overrides)


def test_presets_are_the_released_variants():
    bbs = VattConfig.from_preset("bbs")
    assert (bbs.video_hidden_size, bbs.video_num_hidden_layers, bbs.audio_hidden_size, bbs.text_hidden_size) == \
        (768, 12, 768, 512)
    assert bbs.to_diff_dict() == VattConfig().to_diff_dict()  # defaults are BBS
    assert VattConfig.from_preset("lbs").video_num_hidden_layers == 24
    medium = VattConfig.from_preset("ma-medium")
    assert medium.is_modality_agnostic and medium.shared_hidden_size == 1024
    classifier = VattConfig.from_preset("vit_medium_from_ma", num_labels=400)
    assert classifier.modalities == ["visual"] and classifier.video_pre_projection
    assert classifier.video_post_projection_size == 1024 and classifier.num_labels == 400
    with pytest.raises(ValueError, match="Unknown VATT preset"):
        VattConfig.from_preset("vatt-xxl")


class _FourClips(torch.utils.data.Dataset):
    def __init__(self, key: str, labels: torch.Tensor):
        self.values = tiny_inputs(4)[key]
        self.key, self.labels = key, labels

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return {self.key: self.values[index], "labels": self.labels[index]}


@pytest.mark.parametrize(
    "model_class, key, labels",
    [
        (VattForVideoClassification, "pixel_values", torch.tensor([0, 2, 1, 2])),
        (VattForAudioClassification, "input_values", torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])),
    ],
)
def test_trainer_accumulation_equals_one_batch(tmp_path, model_class, key, labels):
    """4 clips as one batch or as 4 accumulated micro-batches give the same loss and gradients through Trainer."""
    from transformers import Trainer, TrainingArguments

    class GradientRecorder(Trainer):
        def training_step(self, model, inputs, num_items_in_batch=None):
            loss = super().training_step(model, inputs, num_items_in_batch)
            self.recorded = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
            return loss

    modality = "visual" if model_class is VattForVideoClassification else "audio"
    config = tiny_config(modalities=[modality], drop_token_rate=0.0)  # DropToken is random per micro-batch
    torch.manual_seed(0)
    reference = model_class(config)
    results = []
    for batch_size, accumulation in ((4, 1), (1, 4)):
        model = model_class(config)
        model.load_state_dict(reference.state_dict())
        args = TrainingArguments(
            output_dir=str(tmp_path / str(accumulation)), max_steps=1, per_device_train_batch_size=batch_size,
            gradient_accumulation_steps=accumulation, learning_rate=0.0, logging_steps=1, save_strategy="no",
            report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True, max_grad_norm=0.0,
        )
        trainer = GradientRecorder(model=model, args=args, train_dataset=_FourClips(key, labels))
        trainer.train()
        loss = next(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
        results.append((loss, trainer.recorded))
    (loss_full, grads_full), (loss_accumulated, grads_accumulated) = results
    assert loss_accumulated == pytest.approx(loss_full, rel=1e-5)
    assert grads_full.keys() == grads_accumulated.keys() and grads_full
    for name, gradient in grads_full.items():
        torch.testing.assert_close(grads_accumulated[name], gradient, atol=1e-6, rtol=1e-4, msg=name)


def test_training_batch_of_one_clip_is_a_clear_error():
    # the video -> video-audio projection's BatchNorm needs batch statistics of at least two clips in training
    model = VattModel(tiny_config()).train()
    with pytest.raises(ValueError, match="at least 2 clips per batch, got 1"):
        model(**tiny_inputs(batch_size=1))
    model.eval()
    with torch.no_grad():
        assert model(**tiny_inputs(batch_size=1)).video_audio_embeds.shape[0] == 1

"""DG-SCT models: the project's shared model test suite plus DG-SCT's own checks (no-op at init, pairing, loss,
bad inputs, building from pretrained backbones)."""

import tempfile
import unittest

import pytest
import torch
from modeling.common.configuration import InvalidConfigError
from transformers import AutoConfig, AutoModel, ClapAudioModel, Swinv2Config, Swinv2Model

from modeling.common.htsat_adapter_host import HtsatAdapterHost, HtsatConfig
from modeling.common.swinv2_adapter_host import Swinv2AdapterHost
from modeling.dg_sct import DgSctConfig, DgSctForAudioVisualEventLocalization, DgSctModel
from tests.model_test_mixin import ModelTesterMixin, flatten_output

SEGMENTS = 3
FRAMES = 21
VISION = dict(image_size=32, patch_size=4, embed_dim=8, depths=[2, 2, 2], num_heads=[1, 2, 2], window_size=2)
AUDIO = dict(
    spec_size=32,
    num_mel_bins=8,  # freq_ratio 4, as the released HTS-AT
    patch_size=4,
    patch_stride=[4, 4],
    patch_embeds_hidden_size=8,
    depths=[1, 1, 2],  # stages 1-2 pair every 2nd visual block, stage 3 block by block
    num_attention_heads=[1, 2, 2],
    window_size=2,
    hidden_size=32,
)


def tiny_config(**overrides):
    settings = dict(
        vision_config=dict(VISION),
        audio_config=dict(AUDIO),
        num_segments=SEGMENTS,
        num_latent_tokens=2,
        adapter_reduction_factor=2,
        adapter_conv_groups=2,
        temporal_audio_dim=8,
        temporal_visual_dim=16,
        temporal_hidden_size=8,
        temporal_intermediate_size=16,
        temporal_num_attention_heads=2,
        class_activation_top_k=2,
        num_labels=5,
    )
    settings.update(overrides)
    return DgSctConfig(**settings)


def tiny_inputs(batch_size=2, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {
        "input_values": torch.randn(batch_size, SEGMENTS, FRAMES, 8, generator=generator) * 10 - 40,
        "pixel_values": torch.randn(batch_size, SEGMENTS, 3, 32, 32, generator=generator),
    }


def perturb(model, seed=1):
    """Trained-like weights: gates and constant tensors get noise so the DG-SCT modules are active."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, parameter in model.named_parameters():
            if parameter.numel() == 1 or bool((parameter == parameter.flatten()[0]).all()):
                parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
    return model


class DgSctModelTest(ModelTesterMixin, unittest.TestCase):
    all_model_classes = (DgSctModel, DgSctForAudioVisualEventLocalization)

    @classmethod
    def setUpClass(cls):
        # `import hf_av` registers the family (hf_av.families); registering here keeps this file independent of it.
        AutoConfig.register("dg-sct", DgSctConfig, exist_ok=True)
        AutoModel.register(DgSctConfig, DgSctModel, exist_ok=True)

    def _model(self, model_class, config=None, **config_updates):
        return perturb(super()._model(model_class, config, **config_updates))

    def get_config(self):
        return tiny_config()

    def get_inputs(self, model_class, config, batch_size=2):
        return tiny_inputs(batch_size)

    def batch_independent_fields(self, model_class):
        if model_class is DgSctModel:
            return ["audio_pooler_output", "visual_pooler_output", "audio_last_hidden_state",
                    "visual_last_hidden_state"]
        return ["logits", "is_event_logits", "audio_visual_gate", "av_class_logits"]

    def loss_kwargs(self, model_class, config, batch_size):
        if model_class is DgSctModel:
            return None
        return {"labels": torch.tensor([[1, 4, 1], [4, 4, 2]])[:batch_size]}

    def params_without_grad(self, model_class):
        # HTS-AT's final LayerNorm: DG-SCT pools the audio tokens without it (as the original).
        return ("audio_encoder.norm.",)

    # Stage shapes differ, so the shared per-field single-shape checks are replaced by per-stage ones.
    def test_hidden_states_output(self):
        config = self.get_config()
        for model_class in self.all_model_classes:
            model = self._model(model_class, config)
            with torch.no_grad():
                output = model(**tiny_inputs(), output_hidden_states=True)
                plain = model(**tiny_inputs())
            visual_tokens = [64, 64, 16, 4]
            audio_tokens = [64, 64, 16, 4]
            widths = [8, 8, 16, 32]
            self.assertEqual([tuple(s.shape) for s in output.visual_hidden_states],
                             [(2, SEGMENTS, n, c) for n, c in zip(visual_tokens, widths)])
            self.assertEqual([tuple(s.shape) for s in output.audio_hidden_states],
                             [(2, SEGMENTS, n, c) for n, c in zip(audio_tokens, widths)])
            self.assertIsNone(plain.visual_hidden_states)
            config.output_hidden_states = True  # the config default is honoured too
            model = self._model(model_class, config)
            with torch.no_grad():
                self.assertIsNotNone(model(**tiny_inputs()).audio_hidden_states)
            config.output_hidden_states = False

    def test_attention_outputs(self):
        config = self.get_config()
        for model_class in self.all_model_classes:
            model = self._model(model_class, config)
            with torch.no_grad():
                output = model(**tiny_inputs(), output_attentions=True)
            self.assertEqual(len(output.visual_attentions), sum(VISION["depths"]))
            self.assertEqual(len(output.audio_attentions), sum(AUDIO["depths"]))
            # windows of 2x2 tokens: (batch * segments * windows, heads, 4, 4)
            self.assertEqual(tuple(output.visual_attentions[0].shape), (2 * SEGMENTS * 16, 1, 4, 4))
            self.assertEqual(tuple(output.audio_attentions[-1].shape), (2 * SEGMENTS * 1, 2, 4, 4))
            for attention in output.visual_attentions + output.audio_attentions:
                torch.testing.assert_close(attention.sum(-1), torch.ones_like(attention.sum(-1)))

    def test_save_load_round_trip(self):
        """As the shared test, with 1e-6 instead of 0: weights read back from safetensors sit at other addresses, and
        oneDNN/MKL picks alignment-dependent kernels for the DG-SCT matmuls (1-ulp differences; cloning the loaded
        tensors into fresh memory gives bit-identical outputs)."""
        for model_class in self.all_model_classes:
            config = self.get_config()
            model = self._model(model_class, config)
            inputs = self.get_inputs(model_class, config)
            with torch.no_grad():
                before = model(**inputs)
            with tempfile.TemporaryDirectory() as tmp:
                model.save_pretrained(tmp)
                reloaded = model_class.from_pretrained(tmp).eval()
                with torch.no_grad():
                    self.assert_outputs_close(before, reloaded(**inputs), atol=1e-6)
                for name, parameter in model.state_dict().items():
                    self.assertTrue(torch.equal(parameter, reloaded.state_dict()[name]), name)

    def test_meta_device_init(self):
        """As the shared test; the fixed tables checked are the position-index / coordinate buffers (the shared
        test's `"position"` name filter would also catch Swin-V2's learned `continuous_position_bias_mlp`)."""
        for model_class in self.all_model_classes:
            config = self.get_config()
            reference = model_class(config)
            with torch.device("meta"):
                model = model_class(config)
            self.assertTrue(all(p.device.type == "meta" for p in model.parameters()))
            model.to_empty(device="cpu")
            model.init_weights()
            model.eval()
            expected = dict(reference.named_buffers())
            for name, tensor in list(model.state_dict().items()) + list(model.named_buffers()):
                self.assertFalse(tensor.is_meta, name)
                self.assertTrue(torch.isfinite(tensor).all(), name)
                if "relative_position_index" in name or "relative_coords_table" in name:
                    self.assertTrue(torch.equal(tensor, expected[name]), name)
            for module in model.modules():  # zero gates: a freshly initialised model is a no-op on the backbones
                if hasattr(module, "latent_gate"):
                    self.assertEqual(module.latent_gate.item(), 0.0)
                    self.assertEqual(module.gate.item(), 0.0)
            with torch.no_grad():
                output = model(**self.get_inputs(model_class, config))
            for key, tensor in flatten_output(output).items():
                if tensor.is_floating_point():
                    self.assertTrue(torch.isfinite(tensor).all(), key)

    @unittest.skip("Transformers' Swin-V2 and CLAP audio attention are eager-only (no SDPA path to compare).")
    def test_eager_matches_sdpa(self):
        pass

    # ---- DG-SCT's own checks ----------------------------------------------------------------------------------------
    def test_fresh_model_is_a_no_op_on_the_backbones(self):
        """With the gates at their initial zeros every DG-SCT module adds exactly 0: both towers give what they
        give alone (Swin-V2 with its final norm, HTS-AT without, as DG-SCT reads them)."""
        torch.manual_seed(0)
        model = DgSctModel(tiny_config()).eval()
        inputs = tiny_inputs()
        with torch.no_grad():
            output = model(**inputs)
            frames = inputs["pixel_values"].flatten(0, 1)
            visual_alone = model.visual_backbone(frames).last_hidden_state
            spectrogram = inputs["input_values"].flatten(0, 1).unsqueeze(1)
            audio_alone, _, _ = model.audio_backbone.run_stages(spectrogram)
        torch.testing.assert_close(output.visual_last_hidden_state.flatten(0, 1), visual_alone, rtol=0, atol=0)
        torch.testing.assert_close(output.audio_last_hidden_state.flatten(0, 1), audio_alone, rtol=0, atol=0)
        # ... and the trained-like model is not.
        perturb(model)
        with torch.no_grad():
            changed = model(**inputs).visual_last_hidden_state.flatten(0, 1)
        self.assertGreater((changed - visual_alone).abs().max().item(), 1e-3)

    def test_block_pairing(self):
        self.assertEqual(DgSctConfig().paired_visual_blocks, [[0, 1], [0, 1], [2, 5, 8, 11, 14, 17], [0, 1]])
        self.assertEqual(tiny_config().paired_visual_blocks, [[1], [1], [0, 1]])
        model = DgSctModel(tiny_config())
        self.assertEqual(len(model.cross_modal_blocks), sum(AUDIO["depths"]))
        # token mixing sized by the two grids of the stage
        self.assertEqual(model.cross_modal_blocks[1].audio_before_attention.token_projection.weight.shape, (16, 16))

    def test_loss_is_the_original_ave_loss(self):
        model = self._model(DgSctForAudioVisualEventLocalization)
        labels = torch.tensor([[1, 4, 1], [4, 4, 2]])  # 4 = background (last label)
        with torch.no_grad():
            output = model(**tiny_inputs(), labels=labels)
        # The original: one-hot [B, S, C + 1]; labels_BCE, labels_evn = one_hot[..., :-1].max(-1); video = max(evn).
        one_hot = torch.nn.functional.one_hot(labels, 5).float()
        present, per_segment = one_hot[:, :, :-1].max(-1)
        video = per_segment.max(-1).values
        bce = torch.nn.BCEWithLogitsLoss()
        expected = (
            bce(output.is_event_logits, present)
            + bce(output.audio_visual_gate, present)
            + torch.nn.functional.cross_entropy(output.logits, video)
            + torch.nn.functional.cross_entropy(output.av_class_logits, video)
        )
        torch.testing.assert_close(output.loss, expected)
        # Padded segments (-100) are left out of the segment losses.
        padded = torch.tensor([[1, 4, -100], [4, 4, 2]])
        with torch.no_grad():
            loss = model(**tiny_inputs(), labels=padded).loss
        self.assertTrue(torch.isfinite(loss))
        with self.assertRaisesRegex(ValueError, r"class ids in \[0, 5\).*\[7\]"):
            model(**tiny_inputs(), labels=torch.tensor([[1, 4, 7], [4, 4, 2]]))
        with self.assertRaisesRegex(ValueError, "per-segment class ids"):
            model(**tiny_inputs(), labels=torch.tensor([1, 2]))

    def test_bad_inputs_raise_clear_errors(self):
        model = DgSctModel(tiny_config()).eval()
        inputs = tiny_inputs()
        with self.assertRaisesRegex(ValueError, "needs both modalities.*pixel_values"):
            model(input_values=inputs["input_values"])
        with self.assertRaisesRegex(ValueError, "mel bins"):
            model(input_values=inputs["input_values"][..., :6], pixel_values=inputs["pixel_values"])
        with self.assertRaisesRegex(ValueError, "same batch size and number of segments"):
            model(input_values=inputs["input_values"][:, :2], pixel_values=inputs["pixel_values"])
        with self.assertRaisesRegex(ValueError, r"\[batch, segments, frames, mel_bins\]"):
            model(input_values=inputs["input_values"][0], pixel_values=inputs["pixel_values"])
        with self.assertRaisesRegex(ValueError, "frames are 24x24; the model takes 32x32"):
            model(input_values=inputs["input_values"], pixel_values=inputs["pixel_values"][..., :24, :24])
        with self.assertRaisesRegex(ValueError, "at most 128"):
            model(input_values=torch.zeros(2, SEGMENTS, 129, 8), pixel_values=inputs["pixel_values"])

    def test_invalid_configs(self):
        cases = [
            (dict(audio_config=dict(AUDIO, depths=[1, 1], num_attention_heads=[1, 2])), "stages"),
            (dict(vision_config=dict(VISION, depths=[2, 2, 3])), "multiple of the audio depth"),
            (dict(temporal_visual_dim=12), "2 \\* temporal_hidden_size"),
            (dict(adapter_reduction_factor=3), "adapter_reduction_factor"),
            (dict(latent_token_init="normal"), "latent_token_init"),
            (dict(class_activation_top_k=4), "class_activation_top_k"),
            (dict(num_labels=1), "num_labels"),
            (dict(num_labels=3, id2label={0: "background", 1: "cat", 2: "dog"}), "background class must be the LAST"),
        ]
        for overrides, message in cases:
            with self.subTest(overrides=overrides):
                with self.assertRaisesRegex(InvalidConfigError, message):
                    tiny_config(**overrides)

    def test_config_round_trip(self):
        config = tiny_config()
        with tempfile.TemporaryDirectory() as tmp:
            config.save_pretrained(tmp)
            loaded = DgSctConfig.from_pretrained(tmp)
        self.assertIsInstance(loaded.vision_config, Swinv2Config)
        self.assertIsInstance(loaded.audio_config, HtsatConfig)
        self.assertEqual(loaded.to_dict(), config.to_dict())
        self.assertEqual(loaded.trainable_parameters, ["*cross_modal_blocks.*", "temporal_attention.*", "event_head.*"])


def test_build_from_pretrained_backbones_trains_only_dg_sct_and_head(tmp_path):
    """Hub-style backbones (a `Swinv2Model` folder and a `ClapAudioModel` folder) load unchanged; only the DG-SCT
    modules and the AVE head train."""
    torch.manual_seed(0)
    swin = Swinv2Model(Swinv2Config(**VISION))
    clap = ClapAudioModel(HtsatConfig(**AUDIO))
    with torch.no_grad():
        for parameter in list(swin.parameters()) + list(clap.parameters()):
            parameter.add_(0.01)
    swin.save_pretrained(tmp_path / "swin")
    clap.save_pretrained(tmp_path / "clap")
    settings = {k: v for k, v in tiny_config().to_dict().items() if k not in ("vision_config", "audio_config")}
    model = DgSctForAudioVisualEventLocalization.from_pretrained_backbones(
        tmp_path / "swin", tmp_path / "clap", **settings
    )
    for name, tensor in swin.state_dict().items():
        assert torch.equal(model.dg_sct.visual_backbone.swinv2.state_dict()[name], tensor), name
    for name, tensor in clap.audio_encoder.state_dict().items():
        assert torch.equal(model.dg_sct.audio_backbone.audio_encoder.state_dict()[name], tensor), name
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(
        name.startswith(("dg_sct.cross_modal_blocks.", "temporal_attention.", "event_head.")) for name in trainable
    )
    assert not any(p.requires_grad for p in model.dg_sct.visual_backbone.parameters())
    assert not any(p.requires_grad for p in model.dg_sct.audio_backbone.parameters())
    report = model.trainable_report
    assert report.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert 0 < report.trainable < report.total
    # a fresh DG-SCT model is a no-op on the pretrained backbones
    with torch.no_grad():
        inputs = tiny_inputs()
        encoded = model.dg_sct.eval()(**inputs)
        alone = Swinv2AdapterHost(model=swin.eval())(inputs["pixel_values"].flatten(0, 1)).last_hidden_state
    torch.testing.assert_close(encoded.visual_last_hidden_state.flatten(0, 1), alone, rtol=0, atol=1e-6)
    with pytest.raises(TypeError, match="vision_backbone"):
        DgSctModel.from_pretrained_backbones(clap, clap)
    assert isinstance(model.dg_sct.audio_backbone, HtsatAdapterHost)
    assert flatten_output(encoded)

"""torch.compile works on CAV-MAE's forward (tiny config): the compiled model gives the eager model's outputs.

Inductor generates and builds C++ kernels on first use; on a 2-core machine that takes tens of seconds, so the
inductor cases are marked ``slow``. The ``aot_eager`` case (Dynamo capture + AOTAutograd, no code generation)
runs in the default selection; a ``fullgraph=True`` case checks that the forward traces without graph breaks.
"""

from __future__ import annotations

import shutil

import pytest
import torch

from hf_av import CavMaeConfig, CavMaeForAudioVisualClassification, CavMaeForPreTraining

TINY = dict(
    hidden_size=32, num_attention_heads=2, intermediate_size=64, num_modality_specific_layers=1, num_shared_layers=1,
    audio_length=32, num_mel_bins=16, image_size=32, patch_size=8, decoder_hidden_size=16,
    decoder_num_attention_heads=2, decoder_intermediate_size=32, decoder_num_hidden_layers=1,
)


def _inputs(config: CavMaeConfig, batch: int = 2) -> dict:
    generator = torch.Generator().manual_seed(0)
    return {
        "input_values": torch.randn(batch, config.audio_length, config.num_mel_bins, generator=generator),
        "pixel_values": torch.randn(batch, 3, config.image_size, config.image_size, generator=generator),
    }


def _classifier(attn: str) -> CavMaeForAudioVisualClassification:
    torch.manual_seed(0)
    model = CavMaeForAudioVisualClassification(CavMaeConfig(num_labels=5, **TINY))
    model.set_attn_implementation(attn)
    return model.eval()


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_compiled_forward_matches_eager(attn):
    model = _classifier(attn)
    inputs = _inputs(model.config)
    with torch.no_grad():
        expected = model(**inputs).logits
        actual = torch.compile(model, backend="aot_eager")(**inputs).logits
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_forward_traces_in_one_graph(attn):
    model = _classifier(attn)
    inputs = _inputs(model.config)
    with torch.no_grad():
        expected = model(**inputs).logits
        actual = torch.compile(model, backend="aot_eager", fullgraph=True)(**inputs).logits
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5)


needs_compiler = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                    reason="inductor needs a C++ compiler")


@pytest.mark.slow
@needs_compiler
def test_inductor_forward_matches_eager():
    model = _classifier("sdpa")
    inputs = _inputs(model.config)
    with torch.no_grad():
        expected = model(**inputs).logits
        compiled = torch.compile(model)
        actual = compiled(**inputs).logits
        # a second call with other values reuses the compiled graph
        other = {k: v + 0.5 for k, v in inputs.items()}
        torch.testing.assert_close(compiled(**other).logits, model(**other).logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@needs_compiler
def test_inductor_pretraining_loss_and_gradients_match_eager():
    torch.manual_seed(0)
    model = CavMaeForPreTraining(CavMaeConfig(**TINY)).train()
    model.set_attn_implementation("sdpa")
    inputs = _inputs(model.config)
    generator = torch.Generator().manual_seed(1)
    inputs["audio_noise"] = torch.rand(2, model.config.num_audio_patches, generator=generator)
    inputs["visual_noise"] = torch.rand(2, model.config.num_visual_patches, generator=generator)

    loss = model(**inputs).loss
    loss.backward()
    expected_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)

    compiled_loss = torch.compile(model)(**inputs).loss
    compiled_loss.backward()
    torch.testing.assert_close(compiled_loss, loss, rtol=1e-4, atol=1e-5)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, rtol=1e-3, atol=1e-5, msg=name)

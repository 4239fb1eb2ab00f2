"""Gradient accumulation is exact: 4 samples as one batch or as 4 accumulated micro-batches give one update.

`Trainer` hands `num_items_in_batch` to models whose forward accepts loss kwargs and then stops dividing the loss by
`gradient_accumulation_steps`; a model that accepts them must normalise by that count, one that cannot (a batch-level
contrastive loss) must say so with `accepts_loss_kwargs = False` so that `Trainer` divides.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset
from transformers import Trainer, TrainingArguments

from modeling.cav_mae import CavMaeConfig, CavMaeForAudioVisualClassification, CavMaeForPreTraining

TINY = dict(
    hidden_size=16, num_attention_heads=2, intermediate_size=32, num_modality_specific_layers=1, num_shared_layers=1,
    audio_length=32, num_mel_bins=16, image_size=16, patch_size=8, decoder_hidden_size=8,
    decoder_num_attention_heads=2, decoder_intermediate_size=16, decoder_num_hidden_layers=1,
)


class FourClips(Dataset):
    def __init__(self, labels: torch.Tensor):
        generator = torch.Generator().manual_seed(0)
        self.audio = torch.randn(4, 32, 16, generator=generator)
        self.frames = torch.randn(4, 3, 16, 16, generator=generator)
        self.labels = labels

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> dict:
        return {"input_values": self.audio[index], "pixel_values": self.frames[index], "labels": self.labels[index]}


class GradientRecorder(Trainer):
    """Keeps the accumulated gradients of the (single) optimisation step before the optimiser clears them."""

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.recorded = {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.grad is not None}
        return loss


def _one_step(model, dataset, tmp_path, batch_size: int, accumulation: int):
    args = TrainingArguments(
        output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=batch_size,
        gradient_accumulation_steps=accumulation, learning_rate=0.0, logging_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0, disable_tqdm=True, max_grad_norm=0.0,
    )
    trainer = GradientRecorder(model=model, args=args, train_dataset=dataset)
    trainer.train()
    loss = next(entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
    return loss, trainer.recorded


@pytest.mark.parametrize(
    "problem_type, labels",
    [
        ("single_label_classification", torch.tensor([0, 2, 1, 2])),
        ("multi_label_classification", torch.tensor([[1.0, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])),
    ],
)
def test_classifier_accumulation_equals_one_batch(tmp_path, problem_type, labels):
    config = CavMaeConfig(**TINY, num_labels=3, problem_type=problem_type, unimodal_loss_weight=0.5)
    torch.manual_seed(0)
    reference = CavMaeForAudioVisualClassification(config)
    dataset = FourClips(labels)
    results = []
    for batch_size, accumulation in ((4, 1), (1, 4)):
        model = CavMaeForAudioVisualClassification(config)
        model.load_state_dict(reference.state_dict())
        results.append(_one_step(model, dataset, tmp_path / str(accumulation), batch_size, accumulation))
    (loss_full, grads_full), (loss_accumulated, grads_accumulated) = results
    assert loss_accumulated == pytest.approx(loss_full, rel=1e-5)
    assert grads_full.keys() == grads_accumulated.keys() and grads_full
    for name, gradient in grads_full.items():
        torch.testing.assert_close(grads_accumulated[name], gradient, atol=1e-6, rtol=1e-4, msg=name)


def test_models_with_batch_level_losses_let_trainer_divide():
    # the contrastive loss compares the clips of one batch: it cannot be re-normalised across micro-batches, so
    # these models decline loss kwargs and Trainer divides by gradient_accumulation_steps itself
    from modeling.cav_mae import CavMaeModel

    assert CavMaeForPreTraining.accepts_loss_kwargs is False
    assert CavMaeModel.accepts_loss_kwargs is False
    assert CavMaeForAudioVisualClassification.accepts_loss_kwargs is True

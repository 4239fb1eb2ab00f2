"""What every frozen-backbone adapter host shares (Swin-V2 and HTS-AT hosts alike).

A host steps through a hierarchical Swin-style tower stage by stage and block half by block half, so adapter
modules can be inserted beside each half. The per-tower parts (`embed`, `attention_half`, `mlp_half`,
`downsample`) differ in norm placement and masking and stay in each host; the stage record, the stage iteration
and the plain block are the same and live here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["AdapterHost", "HostStage"]


@dataclass(frozen=True)
class HostStage:
    """One stage of the tower as the host steps through it.

    Attributes:
        index: stage number (0-based).
        module: Transformers' stage module (`Swinv2Stage`, `ClapAudioStage`).
        blocks: its blocks in order (run each with `attention_half` then `mlp_half`, or `block`).
        hidden_size: token width inside the stage.
        has_downsample: whether the stage ends with patch merging (all but the last).
    """

    index: int
    module: nn.Module
    blocks: tuple[nn.Module, ...]
    hidden_size: int
    has_downsample: bool


class AdapterHost(nn.Module):
    """Base of the adapter hosts: subclasses name their stage modules (`stage_modules`) and define `attention_half`
    and `mlp_half`."""

    @property
    def stage_modules(self) -> nn.ModuleList:
        raise NotImplementedError

    def iter_stages(self) -> Iterator[HostStage]:
        """Yield the stages in order; run their blocks, then call `downsample` with the stage."""
        for index, stage in enumerate(self.stage_modules):
            yield HostStage(
                index=index,
                module=stage,
                blocks=tuple(stage.blocks),
                hidden_size=stage.dim,
                has_downsample=stage.downsample is not None,
            )

    def block(
        self,
        layer: nn.Module,
        hidden_states: torch.Tensor,
        input_dimensions: tuple[int, int],
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A whole block with nothing inserted (`attention_half` then `mlp_half`)."""
        hidden_states, attentions = self.attention_half(layer, hidden_states, input_dimensions, output_attentions)
        return self.mlp_half(layer, hidden_states), attentions

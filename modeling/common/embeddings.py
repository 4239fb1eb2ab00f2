"""Patch embeddings and fixed 2-D sine-cosine position tables."""

from __future__ import annotations

import math

import torch
from torch import nn


class PatchEmbeddings(nn.Module):
    """Non-overlapping square patches -> tokens: ``Conv2d(C, D, p, stride=p)``, flattened row-major.

    Input ``[B, C, H, W]``; output ``[B, (H/p)*(W/p), D]`` with token index ``row * (W/p) + col``.
    No normalisation layer (MAE / CAV-MAE layout: weight key ``projection``).
    """

    def __init__(self, num_channels: int, hidden_size: int, patch_size: int):
        super().__init__()
        self.num_channels = num_channels
        self.patch_size = patch_size
        self.projection = nn.Conv2d(num_channels, hidden_size, kernel_size=patch_size, stride=patch_size)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.shape[1] != self.num_channels:
            raise ValueError(f"expected {self.num_channels} input channels, got tensor of shape {tuple(pixel_values.shape)}")
        return self.projection(pixel_values).flatten(2).transpose(1, 2)


def sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """``[M] -> [M, embed_dim]``: ``cat(sin(pos * w), cos(pos * w))`` with ``w_k = 10000^(-k / (embed_dim/2))``.

    Computed in float64 (like the numpy reference of MAE / CAV-MAE) and returned as float64.
    """
    if embed_dim % 2 != 0:
        raise ValueError(f"sin-cos embedding width must be even, got {embed_dim}")
    omega = torch.arange(embed_dim // 2, dtype=torch.float64) / (embed_dim / 2.0)
    omega = 1.0 / (10000.0**omega)
    angles = positions.to(torch.float64).reshape(-1, 1) * omega.reshape(1, -1)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def sincos_2d(embed_dim: int, grid_rows: int, grid_cols: int) -> torch.Tensor:
    """Fixed 2-D sin-cos table ``[grid_rows * grid_cols, embed_dim]`` in float32, row-major token order.

    For token ``i = row * grid_cols + col`` the first half of the vector encodes the COLUMN and the second half the
    ROW (the MAE ``get_2d_sincos_pos_embed`` convention, whose ``meshgrid(w, h)`` puts the width coordinate first).
    For CAV-MAE audio the rows are mel-frequency patches and the columns time patches.
    """
    if embed_dim % 4 != 0:
        raise ValueError(f"2-D sin-cos embedding width must be a multiple of 4, got {embed_dim}")
    rows = torch.arange(grid_rows, dtype=torch.float64).repeat_interleave(grid_cols)
    cols = torch.arange(grid_cols, dtype=torch.float64).repeat(grid_rows)
    table = torch.cat([sincos_1d(embed_dim // 2, cols), sincos_1d(embed_dim // 2, rows)], dim=1)
    return table.to(torch.float32)


def square_grid_side(num_patches: int) -> int:
    """Side of a square patch grid; raises if ``num_patches`` is not a perfect square."""
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f"{num_patches} patches do not form a square grid")
    return side


__all__ = ["PatchEmbeddings", "sincos_1d", "sincos_2d", "square_grid_side"]

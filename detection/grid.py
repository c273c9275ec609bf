"""A picture of the top suspects: a grid of images captioned with their given label and the
model's guess."""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid


def suspects_grid(x: np.ndarray, captions: Sequence[str], *, path: str | os.PathLike, columns: int = 8,
                  scale: int = 3) -> None:
    """Save ``x`` (K, C, H, W) in [0, 1] as a grid PNG at ``path`` with one caption under each image."""
    if len(x) == 0:
        raise ValueError("no images for the grid")
    if len(captions) != len(x):
        raise ValueError(f"{len(x)} images but {len(captions)} captions")
    k, c, h, w = x.shape
    tiles = torch.from_numpy(np.asarray(x, dtype=np.float32))
    if c == 1:
        tiles = tiles.repeat(1, 3, 1, 1)
    tiles = torch.nn.functional.interpolate(tiles, scale_factor=scale, mode="nearest")
    caption_h = 14
    pad = 4
    tiles = torch.nn.functional.pad(tiles, (0, 0, 0, caption_h), value=1.0)
    grid = make_grid(tiles, nrow=columns, padding=pad, pad_value=1.0)
    img = Image.fromarray((grid.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    tile_w, tile_h = w * scale, h * scale + caption_h
    for i, text in enumerate(captions):
        r, col = divmod(i, columns)
        left = pad + col * (tile_w + pad)
        top = pad + r * (tile_h + pad) + h * scale + 1
        draw.text((left + 1, top), text, fill=(200, 0, 0), font=font)
    img.save(path)

"""Decoding image files into one uint8 (N, 3, S, S) array, on every core."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from kdfair.errors import KdfairError


def load_image(path: Path, size: int, *, center_crop: int | None = None) -> np.ndarray:
    """One image as uint8 (3, size, size): RGB, optionally centre-cropped to a square first."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if center_crop is not None:
            w, h = image.size
            left, top = (w - center_crop) // 2, (h - center_crop) // 2
            image = image.crop((left, top, left + center_crop, top + center_crop))
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR, reducing_gap=None)
        return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1)


def decode_all(
    paths: list[Path], size: int, *, center_crop: int | None = None, description: str = "decoding"
) -> np.ndarray:
    """All `paths` decoded in order; PIL releases the GIL while decoding, so threads scale."""
    out = np.empty((len(paths), 3, size, size), dtype=np.uint8)

    def decode(i: int) -> None:
        try:
            out[i] = load_image(paths[i], size, center_crop=center_crop)
        except Exception as e:  # noqa: BLE001 - truncated JPEGs fail in many ways
            raise KdfairError(
                f"{paths[i]} cannot be decoded as an image ({type(e).__name__}: {e}). Replace "
                "it with a fresh copy of the file."
            ) from e

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for _ in tqdm(
            pool.map(decode, range(len(paths))),
            total=len(paths),
            desc=description,
            disable=None,
            leave=False,
        ):
            pass
    return out

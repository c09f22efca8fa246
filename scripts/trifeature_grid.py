"""Save a grid of Trifeature renders (rows: shapes, columns: textures) to look at the data.

    python scripts/trifeature_grid.py [out.png] [--image-size 32]

Colours cycle along the diagonals, so every colour appears in every row and column.
"""

from __future__ import annotations

import argparse

import numpy as np
from matplotlib.figure import Figure

from kdfair.data.trifeature import COLORS, SHAPES, TEXTURES, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="trifeature_grid.png")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    colors = list(COLORS)
    fig = Figure(figsize=(11, 11.5))
    axes = fig.subplots(10, 10)
    for s, shape in enumerate(SHAPES):
        for t, texture in enumerate(TEXTURES):
            c = (s + t) % 10
            ax = axes[s, t]
            ax.imshow(render(s, t, c, image_size=args.image_size, rng=rng))
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(colors[c], fontsize=6, labelpad=1)
            if s == 0:
                ax.set_title(texture, fontsize=8)
        axes[s, 0].set_ylabel(shape, fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""kdfair: what knowledge distillation does to fairness and bias.

Reproduces Mohammadshahi & Ioannou (TMLR 2025). See README.md for the commands, docs/design.md
for the architecture and docs/protocol.md for the paper's protocol. From Python:
`kdfair.train([...overrides])`, `kdfair.load_sweep(folder)`, `kdfair.analyze(folder)`
(kdfair.api; imported on first use, so `import kdfair` and `kdfair --help` stay instant).
"""

from kdfair.version import __version__ as __version__  # the one source: kdfair.version

__all__ = ["analyze", "load_sweep", "train"]


def __getattr__(name: str):
    if name in __all__:
        from kdfair import api

        return getattr(api, name)
    raise AttributeError(f"module 'kdfair' has no attribute {name!r}")

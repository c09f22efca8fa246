"""kdfair: what knowledge distillation does to fairness and bias.

Reproduces Mohammadshahi & Ioannou (TMLR 2025). See README.md for the commands, docs/design.md
for the architecture and docs/protocol.md for the paper's protocol.
"""

__version__ = "0.1.0"

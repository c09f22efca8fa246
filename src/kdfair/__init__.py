"""kdfair: what knowledge distillation does to fairness and bias.

Reproduces Mohammadshahi & Ioannou (TMLR 2025). See README.md for the commands and DESIGN.md for
the architecture.
"""

__version__ = "0.1.0"

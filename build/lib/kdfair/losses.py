"""The knowledge-distillation objective, defined once (Hinton et al. 2015; docs/protocol.md).

    L = alpha * s(T) * KL( softmax(z_t / T) || softmax(z_s / T) ) + (1 - alpha) * CE(z_s, y)

z_t are the teacher's logits, z_s the student's, y the hard labels, T the temperature (applied to
both sides) and alpha the weight of the soft term (0.8 in the paper). s(T) = 1 by default, the form
that fits the paper's learning rates; s(T) = T^2 (Hinton's gradient-scale factor) with
`t_squared=True`. KL is summed over classes and averaged over the batch ("batchmean").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float,
    alpha: float,
    t_squared: bool = False,
) -> torch.Tensor:
    """Knowledge-distillation loss of a batch; see the module docstring for the formula.

    Parameters
    ----------
    student_logits, teacher_logits : (B, C) float tensors
    targets : (B,) int64 hard labels
    temperature : T > 0
    alpha : weight of the soft (distillation) term, in [0, 1]
    t_squared : multiply the soft term by T^2
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    # float32 for the soft term: bf16 log-softmax at high T loses the small differences KD
    # transfers.
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    if t_squared:
        soft = soft * temperature**2
    hard = F.cross_entropy(student_logits.float(), targets)
    return alpha * soft + (1.0 - alpha) * hard

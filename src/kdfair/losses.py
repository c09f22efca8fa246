"""The distillation objectives, each defined once with its formula (docs/protocol.md).

`kd` (Hinton et al. 2015), the paper's and kdfair's default:

    L_KD = alpha * s(T) * KL( softmax(z_t / T) || softmax(z_s / T) ) + (1 - alpha) * CE(z_s, y)

z_t are the teacher's logits, z_s the student's, y the hard labels, T the temperature (applied to
both sides) and alpha the weight of the soft term (0.8 in the paper). s(T) = 1 by default, the form
that fits the paper's learning rates; s(T) = T^2 (Hinton's gradient-scale factor) with
`t_squared=True`. KL is summed over classes and averaged over the batch ("batchmean").

`dkd`, Decoupled KD (Zhao et al., CVPR 2022), with p = softmax(z / T) on either side:

    L_DKD = CE(z_s, y) + w * T^2 * ( alpha * TCKD + beta * NCKD )
    TCKD  = KL( [p_t(y), 1 - p_t(y)] || [p_s(y), 1 - p_s(y)] )       (target vs the rest)
    NCKD  = KL( p̂_t || p̂_s ),  p̂(c) = p(c) / (1 - p(y)) for c != y    (among the non-targets)

w is the warm-up factor (0 -> 1 linearly over the first epochs, `kdfair.objectives`).

`at`, attention transfer (Zagoruyko and Komodakis, ICLR 2017), added to L_KD: for an activation
A (B, C, H, W) its attention map is Q(A) = vec( mean_c A_c^2 ) / || vec( mean_c A_c^2 ) ||_2, and

    L_AT = L_KD + beta * sum over stage pairs (i) of mean_{b, positions} ( Q(A_s^i) - Q(A_t^i) )^2

where the larger of a pair's two maps is average-pooled to the smaller's size before it is
normalised.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _check(temperature: float, alpha: float | None = None) -> None:
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if alpha is not None and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")


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
    _check(temperature, alpha)
    # float32 for the soft term: bf16 log-softmax at high T loses the small differences KD
    # transfers.
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=1)
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    if t_squared:
        soft = soft * temperature**2
    hard = F.cross_entropy(student_logits.float(), targets)
    return alpha * soft + (1.0 - alpha) * hard


def _binary_log_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, 2) log [p(y), 1 - p(y)] of softmax(logits), computed in log space (stable when p(y)
    is near 1)."""
    log_p = F.log_softmax(logits, dim=1)
    target = log_p.gather(1, targets[:, None])
    rest = log_p.scatter(1, targets[:, None], float("-inf")).logsumexp(1, keepdim=True)
    return torch.cat([target, rest], dim=1)


def non_target_classes(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, C - 1) int64: each row's classes other than its target, in class order."""
    others = torch.arange(num_classes - 1, device=targets.device).expand(len(targets), -1)
    return others + (others >= targets[:, None]).long()  # skip the target's column


def non_target_logits(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, C - 1): each row's logits without its target class, the others in class order."""
    return logits.gather(1, non_target_classes(targets, logits.shape[1]))


def tckd(student_logits, teacher_logits, targets, *, temperature: float) -> torch.Tensor:
    """DKD's target-class term: KL of the binary (target, rest) distributions at T, batch mean."""
    _check(temperature)
    s = _binary_log_probs(student_logits.float() / temperature, targets)
    t = _binary_log_probs(teacher_logits.float() / temperature, targets)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


def nckd(student_logits, teacher_logits, targets, *, temperature: float) -> torch.Tensor:
    """DKD's non-target term: KL of the distributions among the non-target classes at T."""
    _check(temperature)
    s = F.log_softmax(non_target_logits(student_logits.float(), targets) / temperature, dim=1)
    t = F.log_softmax(non_target_logits(teacher_logits.float(), targets) / temperature, dim=1)
    return F.kl_div(s, t, log_target=True, reduction="batchmean")


def dkd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float,
    beta: float,
    temperature: float,
    warmup: float = 1.0,
) -> torch.Tensor:
    """Decoupled KD: CE + warmup * T^2 * (alpha * TCKD + beta * NCKD) (module docstring);
    `warmup` in [0, 1] is the warm-up factor w of the current epoch."""
    decoupled = alpha * tckd(
        student_logits, teacher_logits, labels, temperature=temperature
    ) + beta * nckd(student_logits, teacher_logits, labels, temperature=temperature)
    hard = F.cross_entropy(student_logits.float(), labels)
    return hard + warmup * temperature**2 * decoupled


def attention_map(activation: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Q(A): the channel mean of the squared activation (B, H, W), average-pooled to `size`
    when given, flattened and L2-normalised per example: (B, H * W)."""
    energy = activation.float().pow(2).mean(1, keepdim=True)
    if size is not None and tuple(energy.shape[-2:]) != tuple(size):
        energy = F.adaptive_avg_pool2d(energy, size)
    return F.normalize(energy.flatten(1), dim=1)


def at_term(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """One stage pair's mean over examples and positions of (Q(A_s) - Q(A_t))^2, the larger map
    pooled to the smaller's size."""
    hs, ws = student.shape[-2:]
    ht, wt = teacher.shape[-2:]
    size = (min(hs, ht), min(ws, wt))
    return (attention_map(student, size) - attention_map(teacher, size)).pow(2).mean()


def at_loss(
    student_activations: Sequence[torch.Tensor],
    teacher_activations: Sequence[torch.Tensor],
    *,
    beta: float,
) -> torch.Tensor:
    """beta * the sum over stage pairs of `at_term` (add it to kd_loss for L_AT)."""
    if len(student_activations) != len(teacher_activations) or not student_activations:
        raise ValueError("attention transfer needs one or more matched (student, teacher) maps")
    terms = [at_term(s, t) for s, t in zip(student_activations, teacher_activations, strict=True)]
    return beta * torch.stack(terms).sum()

"""The paper's equations, one short function each."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. (3): L_CE = -g_y log P^CLS, averaged over the batch. The class logits are the label
    words' logits (Eq. 2; Zhao & Schütze's code applies the softmax to those three only)."""
    return F.cross_entropy(class_logits.float(), labels)


def symmetric_kl(source_logits: torch.Tensor, target_logits: torch.Tensor) -> torch.Tensor:
    """Eq. (7): L_KLD = KL(P^S || P^T) + KL(P^T || P^S) over the full vocabulary at [MASK],
    averaged over the batch."""
    log_p = F.log_softmax(source_logits.float(), dim=-1)
    log_q = F.log_softmax(target_logits.float(), dim=-1)
    kl_pq = (log_p.exp() * (log_p - log_q)).sum(-1)
    kl_qp = (log_q.exp() * (log_q - log_p)).sum(-1)
    return (kl_pq + kl_qp).mean()


def total_loss(ce: torch.Tensor, kl: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. (8): L_total = alpha L_CE + (1 - alpha) L_KLD."""
    return alpha * ce + (1 - alpha) * kl

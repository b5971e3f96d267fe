"""Contrastive loss, TAO's form: mean[(1 - y) d^2 + y max(0, m - d)^2], y = 1 for a defect."""

import torch


def contrastive_loss(distance: torch.Tensor, label: torch.Tensor, margin: float) -> torch.Tensor:
    label = label.to(distance.dtype).reshape(distance.shape)
    similar = (1 - label) * distance.pow(2)
    dissimilar = label * torch.clamp(margin - distance, min=0).pow(2)
    return (similar + dissimilar).mean()

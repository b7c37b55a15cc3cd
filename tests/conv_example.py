"""The hand-computed conv example shared by the torch and numpy forward tests."""

from __future__ import annotations

import numpy as np
import torch

from asyncdqn.model import ConvQNetwork


def hand_computed_example() -> tuple[ConvQNetwork, np.ndarray]:
    """One 3x3 filter summing the image, bias -1; fc 2x + 0.5; Q = (h, 10 - 3h). On the image
    (1, 0.2, 1 on the diagonal): conv 1.2 -> fc 2.9 -> Q = (2.9, 1.3)."""
    net = ConvQNetwork((1, 3, 3), 2, convs=((1, 3, 1),), hidden=1)
    with torch.no_grad():
        net.features[0].weight.fill_(1.0)
        net.features[0].bias.fill_(-1.0)
        net.head[0].weight.fill_(2.0)
        net.head[0].bias.fill_(0.5)
        net.head[2].weight.copy_(torch.tensor([[1.0], [-3.0]]))
        net.head[2].bias.copy_(torch.tensor([0.0, 10.0]))
    img = np.zeros((1, 1, 3, 3), np.uint8)
    img[0, 0, 0, 0] = 255
    img[0, 0, 1, 1] = 51  # 0.2
    img[0, 0, 2, 2] = 255
    return net, img

"""Class balancing with a conditional GAN (training split only). Needs the `train` extra."""

from ..core.errors import EdgeferError

LOSSES = ("hinge", "wgan-gp")  # hinge: conditional DCGAN with spectral norm; wgan-gp: gradient penalty


class GanError(EdgeferError, ValueError):
    pass

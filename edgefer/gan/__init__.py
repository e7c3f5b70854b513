"""Class balancing with a conditional GAN (training split only). Needs the `train` extra."""

"""Networks. They take (x, t, cond) with t a float in [0, 1] and know nothing else about diffusion."""

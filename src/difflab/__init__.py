"""difflab: denoising diffusion models with correct math and measured results."""

__version__ = "0.1.0"

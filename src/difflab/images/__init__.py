"""The image kind: images (N, C, H, W), a classifier-based evaluation, image grids and rendered text."""

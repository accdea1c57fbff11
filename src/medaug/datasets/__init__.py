"""Datasets and offline jobs: reading cases, on-the-fly PyTorch datasets, offline expansion."""

"""Intensity transforms: change voxel values of intensity images, never label maps."""

from .bias_field import BiasField, GaussianField, RandomBiasField, RandomGaussianField
from .gamma import Gamma, RandomGamma
from .noise import Noise, RandomNoise
from .normalize import Clip, ClipPercentile, RescaleIntensity, ZNormalize

__all__ = [
    "BiasField", "GaussianField", "RandomBiasField", "RandomGaussianField",
    "Gamma", "RandomGamma",
    "Noise", "RandomNoise",
    "Clip", "ClipPercentile", "RescaleIntensity", "ZNormalize",
]

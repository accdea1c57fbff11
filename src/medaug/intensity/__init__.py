"""Intensity transforms: change voxel values of intensity images, never label maps."""

from .bias_field import BiasField, GaussianField, RandomBiasField, RandomGaussianField
from .blur import Blur, RandomBlur, RandomSharpen, Sharpen
from .clahe import CLAHE, RandomCLAHE, equalize_adaptive
from .contrast import Brightness, Contrast, HistogramShift, RandomBrightness, RandomContrast, RandomHistogramShift
from .gamma import Gamma, RandomGamma
from .lowres import LowResolution, RandomLowResolution
from .mix import CutMix, Cutout, Mixup, RandomCutout, cutmix, mixup
from .mri_artifacts import (
    Ghosting,
    Gibbs,
    Motion,
    RandomGhosting,
    RandomGibbs,
    RandomMotion,
    RandomSpike,
    Spike,
)
from .noise import Noise, RandomNoise
from .normalize import Clip, ClipPercentile, RescaleIntensity, ZNormalize
from .window import CT_WINDOWS, RandomWindow, Window

__all__ = [
    "BiasField", "GaussianField", "RandomBiasField", "RandomGaussianField",
    "Gamma", "RandomGamma",
    "Noise", "RandomNoise",
    "Clip", "ClipPercentile", "RescaleIntensity", "ZNormalize",
    "Contrast", "RandomContrast", "Brightness", "RandomBrightness", "HistogramShift", "RandomHistogramShift",
    "Window", "RandomWindow", "CT_WINDOWS",
    "Blur", "RandomBlur", "Sharpen", "RandomSharpen",
    "CLAHE", "RandomCLAHE", "equalize_adaptive",
    "Motion", "RandomMotion", "Ghosting", "RandomGhosting", "Spike", "RandomSpike", "Gibbs", "RandomGibbs",
    "LowResolution", "RandomLowResolution",
    "Mixup", "CutMix", "mixup", "cutmix", "Cutout", "RandomCutout",
]

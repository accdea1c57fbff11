"""Ultrasound: probe angle and pressure, speckle, gain; no speckle removal."""

DESCRIPTION = "Ultrasound B-mode: probe angle and position, pressure-like elastic change, multiplicative speckle, gain; no blur beyond 0.5 mm (speckle carries texture)"

FILL = 0.0

CONFIG = [
    {"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1], "translation_fraction": 0.05}},
    {"RandomElastic": {"control_points": 7, "max_displacement": 4, "p": 0.5}},
    {"RandomNoise": {"kind": "speckle", "std": [0, 0.15]}},
    {"RandomContrast": {"scale": [0.8, 1.2]}},
]

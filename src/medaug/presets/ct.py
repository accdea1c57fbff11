"""CT: geometry within patient-positioning variation, noise in HU, output kept in HU."""

DESCRIPTION = "CT in Hounsfield units: small rigid and elastic changes, quantum noise and reconstruction blur in HU, no intensity scaling, output clipped to [-1024, 3071] HU, air (-1000 HU) outside the field of view"

FILL = -1000.0

CONFIG = [
    {"RandomAffine": {"rotation": 7, "scale": [0.92, 1.08], "translation_fraction": 0.05}},
    {"RandomElastic": {"control_points": 7, "max_displacement": 4, "p": 0.5}},
    {"RandomNoise": {"std": [0, 15]}},
    {"RandomBlur": {"std": [0, 0.5], "p": 0.3}},
    {"Clip": {"lo": -1024, "hi": 3071}},
]

LIGHT = [
    {"RandomAffine": {"rotation": 4, "scale": [0.96, 1.04], "translation_fraction": 0.03}},
    {"RandomNoise": {"std": [0, 8]}},
    {"Clip": {"lo": -1024, "hi": 3071}},
]

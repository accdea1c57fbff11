"""X-ray (radiographs): small positioning changes, mild elastic, contrast/gamma and noise, optional CLAHE."""

DESCRIPTION = "X-ray radiographs: small rotation/zoom/shift (no large geometric distortion), mild elastic, exposure contrast and gamma, noise relative to the range, occasional CLAHE"

FILL = "background"

CONFIG = [
    {"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1], "translation_fraction": 0.05}},
    {"RandomElastic": {"control_points": 5, "max_displacement": 3, "p": 0.3}},
    {"RandomContrast": {"scale": [0.85, 1.15]}},
    {"RandomGamma": {"log_gamma": 0.2}},
    {"RandomNoise": {"std": [0, 0.02], "relative": True}},
    {"RandomCLAHE": {"p": 0.2}},
]

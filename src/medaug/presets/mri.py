"""MRI: positioning, mild deformation, coil bias field, sequence-range contrast, Rician noise, rare motion/ghosting."""

DESCRIPTION = "MRI (magnitude, arbitrary units): rigid and elastic changes, left-right flip, bias field, mild gamma within the sequence range, Rician noise relative to the range, occasional motion and ghosting; no intensity inversion"

FILL = 0.0

CONFIG = [
    {"RandomAffine": {"rotation": 10, "scale": [0.9, 1.1], "translation_fraction": 0.05}},
    {"RandomElastic": {"control_points": 7, "max_displacement": 5, "p": 0.5}},
    {"RandomFlip": {"axes": ["LR"], "p": 0.5}},
    {"RandomBiasField": {"order": 3, "coefficients": 0.15, "p": 0.5}},
    {"RandomGamma": {"log_gamma": 0.2, "p": 0.5}},
    {"RandomNoise": {"kind": "rician", "std": [0, 0.02], "relative": True}},
    {"RandomMotion": {"p": 0.1}},
    {"RandomGhosting": {"p": 0.1}},
]

HEAVY = [
    {"RandomAffine": {"rotation": 15, "scale": [0.85, 1.15], "translation_fraction": 0.1}},
    {"RandomElastic": {"control_points": 7, "max_displacement": 8, "p": 0.7}},
    {"RandomFlip": {"axes": ["LR"], "p": 0.5}},
    {"RandomBiasField": {"order": 3, "coefficients": 0.2, "p": 0.7}},
    {"RandomGamma": {"log_gamma": 0.35, "p": 0.7}},
    {"RandomNoise": {"kind": "rician", "std": [0, 0.04], "relative": True}},
    {"RandomMotion": {"p": 0.2}},
    {"RandomGhosting": {"p": 0.2}},
    {"RandomBlur": {"std": [0, 1.0], "p": 0.2}},
]

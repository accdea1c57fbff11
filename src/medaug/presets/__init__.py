"""Modality presets and the medical constraints that check pipelines."""

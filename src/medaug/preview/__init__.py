"""Preview pictures and the radiologist review page."""

from .figures import preview

__all__ = ["preview"]

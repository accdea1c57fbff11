"""The augmentation experiment (issue 9): does augmentation help a small CNN classify brain lesions?

``medaug experiment`` builds a lesion-classification task from real brain MRI
shipped with nibabel (:mod:`.data`), trains the CNN of Namozov & Cho
(:mod:`.model`) with several augmentation strategies and seeds, and reports
accuracy and AUC with learning curves (:mod:`.train`).  See ``docs/experiment.md``.
"""

from __future__ import annotations

from .data import LesionTaskConfig, TaskData, load_task, make_task
from .model import NamozovCNN
from .train import PAPER, STRATEGIES, TrainConfig, auc, train_run

__all__ = [
           "PAPER",
           "STRATEGIES",
           "LesionTaskConfig",
           "NamozovCNN",
           "TaskData",
           "TrainConfig",
           "auc",
           "load_task",
           "make_task",
           "train_run",
]

"""The augmentation experiment: does augmentation help a small network on brain-MRI lesions?

``medaug experiment`` builds a lesion-classification and a lesion-segmentation
task from real brain MRI shipped with nibabel (:mod:`.data`), trains the CNN
of Namozov & Cho and a small U-Net (:mod:`.model`) with several augmentation
strategies (:mod:`.sources`) and seeds (:mod:`.train`), applies test-time
augmentation (:mod:`.tta`), and compares each strategy with none on an
in-distribution test set and under a scanner shift, with bootstrap intervals
and McNemar's test (:mod:`.stats`, :mod:`.report`, :mod:`.run`).  See
``docs/experiment.md``.
"""

from __future__ import annotations

from .data import LesionTaskConfig, TaskData, TaskSplits, load_task, make_task
from .model import NamozovCNN, UNet2D
from .report import PAPER
from .run import ExperimentSettings, run_experiment
from .sources import STRATEGIES
from .stats import mcnemar, paired_bootstrap
from .train import TrainConfig, auc, train_run

__all__ = [
           "PAPER",
           "STRATEGIES",
           "ExperimentSettings",
           "LesionTaskConfig",
           "NamozovCNN",
           "TaskData",
           "TaskSplits",
           "TrainConfig",
           "UNet2D",
           "auc",
           "load_task",
           "make_task",
           "mcnemar",
           "paired_bootstrap",
           "run_experiment",
           "train_run",
]

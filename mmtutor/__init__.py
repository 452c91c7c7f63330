"""mmtutor: the companion package of *Multimodal Fusion, Hands-On*.

Subpackages, in dependency order: :mod:`mmtutor.utils` <- :mod:`mmtutor.data`,
:mod:`mmtutor.encoders`, :mod:`mmtutor.fusion`, :mod:`mmtutor.heads` <- :mod:`mmtutor.models`
<- :mod:`mmtutor.train` <- :mod:`mmtutor.tasks`, :mod:`mmtutor.experiments` <-
:mod:`mmtutor.cli`. :mod:`mmtutor.metrics` and :mod:`mmtutor.plots` stand apart.
``train``, ``plots`` and the modules above them are imported by name
(``from mmtutor.train import fit``), so that ``import mmtutor`` stays light.
"""

from mmtutor import data, encoders, fusion, heads, metrics, models
from mmtutor.data import make_classification, make_mner
from mmtutor.fusion import FUSION_LEVELS, FUSIONS, build_fusion
from mmtutor.models import build_classifier, build_tagger, build_unimodal_classifier
from mmtutor.utils import get_device, seed_everything

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "data",
    "encoders",
    "fusion",
    "heads",
    "metrics",
    "models",
    "FUSIONS",
    "FUSION_LEVELS",
    "build_fusion",
    "build_classifier",
    "build_tagger",
    "build_unimodal_classifier",
    "make_classification",
    "make_mner",
    "get_device",
    "seed_everything",
]

"""End-to-end pipelines that sit above :mod:`mmtutor.train`: data in, trained model and report out.

The book's case-study chapters and the command line (``python -m mmtutor ...``) call the
same functions, so a result in the book and a run on real data take one code path.

* :mod:`mmtutor.tasks.ner` -- (multimodal) named entity recognition: :class:`NERConfig`,
  :func:`train_ner` -> :class:`NERRun` (``predict``, ``evaluate``, ``save``, ``load``).
* :mod:`mmtutor.tasks.classify` -- image + text classification: :class:`ClassifyConfig`,
  :func:`train_classifier` -> :class:`ClassifierRun` (``predict``, ``evaluate``, ``save``,
  ``load``), on JSONL manifests or generated data.

What both share (configs to and from JSON, validated checkpoints, the device, image
statistics, run summaries) lives in one private module, ``mmtutor.tasks._run``.
"""

from mmtutor.tasks._run import encoder_param_groups
from mmtutor.tasks.classify import (
    CLASSIFY_MODALITIES,
    CLASSIFY_TEXT_ENCODERS,
    ClassifierRun,
    ClassifyConfig,
    ClassifyEvaluation,
    train_classifier,
)
from mmtutor.tasks.ner import (
    NER_ENCODERS,
    NER_FUSIONS,
    NER_HEADS,
    NERConfig,
    NEREvaluation,
    NERRun,
    image_paths,
    train_ner,
    write_conll,
)

__all__ = [
    "NERConfig",
    "NEREvaluation",
    "NERRun",
    "train_ner",
    "image_paths",
    "write_conll",
    "NER_ENCODERS",
    "NER_HEADS",
    "NER_FUSIONS",
    "ClassifyConfig",
    "ClassifyEvaluation",
    "ClassifierRun",
    "train_classifier",
    "CLASSIFY_MODALITIES",
    "CLASSIFY_TEXT_ENCODERS",
    "encoder_param_groups",
]

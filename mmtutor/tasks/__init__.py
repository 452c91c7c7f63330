"""End-to-end pipelines that sit above :mod:`mmtutor.train`: data in, trained model and report out.

The book's case-study chapters and the command line (``python -m mmtutor ...``) call the
same functions, so a result in the book and a run on real data take one code path.

* :mod:`mmtutor.tasks.ner` -- (multimodal) named entity recognition: :class:`NERConfig`,
  :func:`train_ner` -> :class:`NERRun` (``predict``, ``evaluate``, ``save``, ``load``).
"""

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
]

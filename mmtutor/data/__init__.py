"""Data for the book: generated data sets with known ceilings, readers for real formats,
vocabularies, tag maps, datasets and collate functions that make the package's batch dicts.

Generated (offline, deterministic from a seed):

* :func:`make_classification` -- shape images + captions; uniqueness, redundancy, synergy,
  noise and missing-modality knobs; Bayes-oracle ceilings per modality.
* :func:`make_mner` -- tweet-like NER with ambiguous names that the image often resolves.

Real data (when ``$MMTUTOR_DATA`` holds it, see :func:`find_real_data`):
:func:`read_conll`, :func:`read_twitter_mner`, :func:`read_manifest`; and
:func:`write_manifest`, which writes a generated data set as image files + JSONL manifests.

Shipped real data: :func:`load_wnut17` -- the WNUT-17 tweet NER corpus (CC-BY 4.0,
Derczynski et al. 2017), read from the package, offline.
"""

from __future__ import annotations

from mmtutor.data.buckets import LengthBucketSampler
from mmtutor.data.classification import (
    MODES,
    SYNONYMS,
    ClassificationData,
    ClassificationSplit,
    joint_table,
    make_classification,
)
from mmtutor.data.datasets import (
    ClassificationDataset,
    TaggingDataset,
    collate_classification,
    collate_tagging,
)
from mmtutor.data.images import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageSource,
    channel_stats,
    image_transform,
    load_image,
    read_pixels,
)
from mmtutor.data.loaders import Loaders, make_loaders
from mmtutor.data.manifest import IMAGE_FORMATS, write_manifest
from mmtutor.data.mner import (
    AMBIGUOUS,
    CUES,
    ENTITY_TYPES,
    LEXICON,
    TYPE_SHAPES,
    MNERData,
    MNERSplit,
    make_mner,
)
from mmtutor.data.paths import DATA_ENV, REAL_DATA_LAYOUTS, data_home, find_real_data
from mmtutor.data.readers import (
    ManifestExample,
    TaggedCorpus,
    read_conll,
    read_manifest,
    read_twitter_mner,
)
from mmtutor.data.shapes import SHAPES, draw_shapes
from mmtutor.data.subwords import IGNORE_INDEX, align_subword_labels
from mmtutor.data.tags import (
    SCHEMES,
    TaggedSentence,
    TagMap,
    detect_scheme,
    get_spans,
    spans_to_tags,
    split_tag,
    to_iob2,
)
from mmtutor.data.vocab import PAD, UNK, CharVocab, Vocab, tokenize
from mmtutor.data.wnut17 import (
    WNUT17_FILES,
    WNUT17_PUBLISHED,
    WNUT17_TYPES,
    PublishedResult,
    WNUT17Splits,
    load_wnut17,
)

__all__ = [
    # generators
    "make_classification",
    "ClassificationData",
    "ClassificationSplit",
    "joint_table",
    "MODES",
    "SYNONYMS",
    "make_mner",
    "MNERData",
    "MNERSplit",
    "ENTITY_TYPES",
    "TYPE_SHAPES",
    "LEXICON",
    "AMBIGUOUS",
    "CUES",
    "SHAPES",
    "draw_shapes",
    # readers and real data
    "read_conll",
    "read_twitter_mner",
    "read_manifest",
    "write_manifest",
    "IMAGE_FORMATS",
    "TaggedCorpus",
    "ManifestExample",
    "data_home",
    "find_real_data",
    "DATA_ENV",
    "REAL_DATA_LAYOUTS",
    "load_wnut17",
    "WNUT17Splits",
    "WNUT17_FILES",
    "WNUT17_PUBLISHED",
    "PublishedResult",
    "WNUT17_TYPES",
    # images
    "load_image",
    "read_pixels",
    "image_transform",
    "channel_stats",
    "ImageSource",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    # vocabularies and tags
    "Vocab",
    "CharVocab",
    "tokenize",
    "PAD",
    "UNK",
    "TagMap",
    "TaggedSentence",
    "SCHEMES",
    "split_tag",
    "detect_scheme",
    "to_iob2",
    "get_spans",
    "spans_to_tags",
    "align_subword_labels",
    "IGNORE_INDEX",
    # datasets
    "ClassificationDataset",
    "TaggingDataset",
    "collate_classification",
    "collate_tagging",
    "make_loaders",
    "LengthBucketSampler",
    "Loaders",
]

"""The command line: ``python -m mmtutor ner ...`` and ``python -m mmtutor classify ...``.

``ner`` trains a (multimodal) named entity tagger on CoNLL-style or Twitter-2015/2017 files,
keeps the epoch with the best entity-level F1 on the development file, prints the seqeval
report on the test file in both modes (conlleval, which published results use, and strict
IOB2) and the token-level micro F1 with ``O`` counted (which is *not* NER F1), and writes
``metrics.json``, ``model.pt`` and ``predictions.txt`` to ``--out``. It calls
:func:`mmtutor.tasks.train_ner`, the function the book's NER chapter uses.

``classify`` trains an image + text classifier on JSONL manifests (``{"text": ...,
"image": "relative/path.jpg", "label": ...}`` per line; an absent ``text`` or ``image`` is a
missing modality), keeps the epoch with the best development score, prints accuracy,
macro-F1 and the per-class report on the test manifest, and writes ``metrics.json``,
``model.pt`` and ``predictions.jsonl``. It calls :func:`mmtutor.tasks.train_classifier`.

The model and training options of both commands are generated from the fields of
:class:`~mmtutor.tasks.NERConfig` and :class:`~mmtutor.tasks.ClassifyConfig` (types,
choices, help text), so the command line and the Python API cannot drift apart.

Both run data-parallel under ``torchrun`` unchanged, e.g. ``torchrun --nproc_per_node 2 -m
mmtutor classify ...`` (see :mod:`mmtutor.distributed`): every process trains on its share of
each batch, and rank 0 alone prints the report and writes the files.

Errors in the input (a malformed line, a missing image, a label the training file lacks,
an unreadable checkpoint, an unavailable device) end the run with one line on stderr,
``mmtutor <command>: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main", "build_parser"]

PROG = "mmtutor"


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({err.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object like '{{\"k\": 1}}'")
    return value


def _base_type(hint: object) -> tuple[object, bool]:
    """``int | None`` -> ``(int, True)``; ``list[int]`` -> ``(list[int], False)``."""
    args = typing.get_args(hint)
    if type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _or_none(base: type) -> Any:
    """An argparse type that reads ``none`` as ``None`` (``--patience none``), else ``base``."""
    def parse(text: str) -> Any:
        return None if text.lower() == "none" else base(text)

    parse.__name__ = base.__name__  # argparse names the type in its "invalid int value" errors
    return parse


def add_config_options(group: argparse._ArgumentGroup, config_cls: type, *,
                       defaults: dict[str, Any] | None = None) -> None:
    """Add one ``--option`` per field of a task config dataclass (type, choices, help).

    Args:
        group: the parser or argument group.
        config_cls: :class:`~mmtutor.tasks.NERConfig` or :class:`~mmtutor.tasks.ClassifyConfig`.
        defaults: command-line defaults that differ from the dataclass's (e.g. ``device``).
    """
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        base, optional = _base_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        default = (defaults or {}).get(f.name, default)
        kwargs: dict[str, Any] = {"dest": f.name, "default": default}
        if typing.get_origin(base) is list:
            kwargs.update(nargs="+", type=typing.get_args(base)[0], metavar="N")
        elif typing.get_origin(base) is dict:
            kwargs.update(type=_json_object, metavar="JSON")
        elif base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif base in (int, float, str):
            kwargs["type"] = _or_none(base) if optional else base
        if "choices" in f.metadata:
            kwargs["choices"] = list(f.metadata["choices"]) + ([None] if optional else [])
        shown = json.dumps(default) if isinstance(default, dict) else "%(default)s"
        kwargs["help"] = f"{f.metadata.get('help', '')} (default: {shown})"
        group.add_argument("--" + f.name.replace("_", "-"), **kwargs)


def _config(config_cls: type, args: argparse.Namespace) -> Any:
    """The config dataclass from the parsed options (its own checks run)."""
    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})


def _output_options(parser: argparse.ArgumentParser, out: str, files: str) -> None:
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path(out), metavar="DIR",
                        help=f"where {files} go (created if needed) (default: %(default)s)")
    output.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar over the epochs")


def _split_files(parser: argparse.ArgumentParser, what: str) -> argparse._ArgumentGroup:
    data = parser.add_argument_group("data")
    data.add_argument("--train", required=True, type=Path, metavar="FILE",
                      help=f"training {what} (required); vocabularies and classes come from it")
    data.add_argument("--dev", required=True, type=Path, metavar="FILE",
                      help=f"development {what} (required); selects the epoch")
    data.add_argument("--test", required=True, type=Path, metavar="FILE",
                      help=f"test {what} (required); scored once, at the end")
    return data


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mmtutor`` and its ``ner`` and ``classify`` commands."""
    from mmtutor.tasks import ClassifyConfig, NERConfig

    parser = _Parser(prog=PROG,
                     description="Companion tools of the book 'Multimodal Fusion, Hands-On'.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    ner = commands.add_parser(
        "ner", help="train and evaluate a (multimodal) named entity tagger",
        description=(
            "Train a named entity tagger, keep the epoch with the best entity-level F1 on\n"
            "--dev, print the seqeval report on --test, and write metrics.json, model.pt and\n"
            "predictions.txt to --out. Text only unless --images is given (Twitter format).\n"
            "Any tag set works (Twitter-2015 uses OTHER)."),
        epilog=(
            "examples:\n"
            "  python -m mmtutor ner --train train.txt --dev valid.txt --test test.txt\n"
            "  python -m mmtutor ner --format twitter --images twitter2015/images "
            "--fusion gated \\\n"
            "      --train twitter2015/train.txt --dev twitter2015/valid.txt "
            "--test twitter2015/test.txt"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    data = _split_files(ner, "file")
    data.add_argument("--format", choices=("conll", "twitter"), default="conll",
                      help="'conll': token ... tag per line, blank line between sentences, "
                           "-DOCSTART- skipped; 'twitter': an IMGID:<id> line starts each "
                           "tweet (Twitter-2015/2017). IOB1/IOB2/IOBES tags are converted "
                           "to IOB2. (default: %(default)s)")
    data.add_argument("--images", type=Path, metavar="DIR", default=None,
                      help="folder of <id>.jpg images for --format twitter; without it the "
                           "tagger reads the text only; with it --fusion defaults to gated "
                           "(default: none)")
    data.add_argument("--missing-images", choices=("error", "mask"), default="error",
                      help="a tweet whose image file is absent: 'error' stops with file:line, "
                           "'mask' marks the image missing and the fusion does without it "
                           "(default: %(default)s)")
    add_config_options(ner.add_argument_group("model and training"), NERConfig,
                       defaults={"device": "auto"})
    _output_options(ner, "runs/ner", "metrics.json, model.pt and predictions.txt")
    ner.set_defaults(handler=_run_ner)

    classify = commands.add_parser(
        "classify", help="train and evaluate an image + text classifier on JSONL manifests",
        description=(
            "Train an image + text classifier on JSONL manifests, one object per line:\n"
            '  {"text": "a red disc", "image": "images/0001.jpg", "label": "circle"}\n'
            "(image paths relative to --image-root; no 'text' or no 'image' key = that\n"
            "modality is missing). Keeps the epoch with the best --metric on --dev, prints\n"
            "accuracy, macro-F1 and the per-class report on --test, and writes metrics.json,\n"
            "model.pt and predictions.jsonl to --out."),
        epilog=(
            "examples:\n"
            "  python -m mmtutor classify --train data/train.jsonl --dev data/val.jsonl \\\n"
            "      --test data/test.jsonl --image-root data --fusion gated --epochs 10\n"
            "  python -m mmtutor classify ... --modality text   # the text-only baseline"),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    data = _split_files(classify, "manifest (.jsonl)")
    data.add_argument("--image-root", type=Path, metavar="DIR", default=None,
                      help="folder the manifests' image paths are relative to; a path may not "
                           "leave it (no '..', absolute paths or symlinks out) "
                           "(default: the folder of --train)")
    add_config_options(classify.add_argument_group("model and training"), ClassifyConfig,
                       defaults={"device": "auto"})
    _output_options(classify, "runs/classify", "metrics.json, model.pt and predictions.jsonl")
    classify.set_defaults(handler=_run_classify)
    return parser


def _say(line: str) -> None:
    """Print ``line`` once: in the only process, or in rank 0 under ``torchrun``."""
    from mmtutor.distributed import is_main_process

    if is_main_process():
        print(line)


# ----------------------------------------------------------------------------------- ner
def _read(args: argparse.Namespace) -> dict[str, list]:
    """Read the three files; a malformed line raises ``ValueError('file:line: ...')``."""
    from mmtutor.data import read_conll, read_twitter_mner

    files = {"train": args.train, "dev": args.dev, "test": args.test}
    if args.format == "conll":
        corpora = {name: read_conll(path) for name, path in files.items()}
    else:
        with warnings.catch_warnings(record=True) as caught:  # "N tweets have no image"
            warnings.simplefilter("always")
            corpora = {name: read_twitter_mner(path, args.images,
                                               missing_image=args.missing_images)
                       for name, path in files.items()}
        for w in caught:
            print(f"{PROG} ner: warning: {w.message}", file=sys.stderr)
    for name, corpus in corpora.items():
        if not corpus:
            raise ValueError(f"{files[name]}: found no sentences; expected a --{name} file in "
                             f"{args.format} format")
    return corpora


def _check(args: argparse.Namespace) -> None:
    """Cross-option rules argparse cannot express; raise ValueError with the fix."""
    if args.images is not None and args.format != "twitter":
        raise ValueError("--images needs --format twitter (CoNLL files have no image ids); "
                         "drop --images for a text-only run")
    if args.fusion is not None and args.images is None:
        raise ValueError(f"--fusion {args.fusion} needs --images DIR (and --format twitter); "
                         "without images the tagger is text only")
    if args.images is not None and args.fusion is None:
        args.fusion = "gated"


def _run_ner(args: argparse.Namespace) -> int:
    _check(args)
    from mmtutor.distributed import is_main_process
    from mmtutor.tasks import NERConfig, image_paths, train_ner, write_conll
    from mmtutor.tasks._run import write_json
    from mmtutor.utils import get_device

    config = _config(NERConfig, args)
    device = get_device(config.device)  # a clear error now, not after reading the data
    corpora = _read(args)
    images = None
    if config.fusion is not None:
        images = tuple(image_paths(corpora[name]) for name in ("train", "dev", "test"))
    sizes = ", ".join(f"{k} {len(v)}" for k, v in corpora.items())
    mode = "text only" if images is None else f"text + image ({config.fusion})"
    _say(f"{PROG} ner: {sizes} sentences; {config.encoder}-{config.head}, {mode}, on {device}")
    if config.encoder != "minilm":
        vectors = config.resolved_word_vectors()
        _say(f"{PROG} ner: word vectors: {vectors or 'random (none)'}"
             + (f" (--word-vectors {config.word_vectors})" if config.word_vectors == "auto" else ""))
    run = train_ner(corpora["train"], corpora["dev"], corpora["test"], images=images,
                    config=config, progress=not args.no_progress)
    if not is_main_process():  # under torchrun, rank 0 alone reports and writes the files
        return 0
    test = run.test
    print(f"\nbest dev entity F1 (strict): {run.dev_f1:.4f}\n")
    print("test, entity level (seqeval, strict IOB2):")
    print(test.entity_report.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\ntest entity F1, conlleval mode (as published CoNLL/Twitter results): "
          f"{test.entity_f1_conlleval:.4f}")
    print(f"test entity F1, strict IOB2 mode: {test.entity_f1_strict:.4f}")
    print(f"test token-level micro F1 with O counted: {test.token_f1:.4f} "
          "(token accuracy; not comparable with entity F1)")
    run.save(args.out / "model.pt")
    metrics = {**run.metrics(), "files": {k: str(getattr(args, k)) for k in ("train", "dev", "test")},
               "format": args.format, "images": None if args.images is None else str(args.images)}
    write_json(args.out / "metrics.json", metrics)
    image_ids = [s.image_id for s in corpora["test"]] if args.format == "twitter" else None
    write_conll(args.out / "predictions.txt", corpora["test"], predicted=test.predicted,
                image_ids=image_ids)
    print(f"\nwrote {args.out / 'metrics.json'}, {args.out / 'model.pt'}, "
          f"{args.out / 'predictions.txt'}")
    return 0


# ------------------------------------------------------------------------------ classify
def _run_classify(args: argparse.Namespace) -> int:
    from mmtutor.data import read_manifest
    from mmtutor.distributed import is_main_process
    from mmtutor.tasks import ClassifyConfig, train_classifier
    from mmtutor.tasks._run import write_json
    from mmtutor.utils import get_device

    config = _config(ClassifyConfig, args)
    device = get_device(config.device)  # a clear error now, not after reading the data
    root = args.image_root if args.image_root is not None else args.train.parent
    splits = {}
    for name in ("train", "dev", "test"):
        splits[name] = read_manifest(getattr(args, name), root)
        if not splits[name]:
            raise ValueError(f"{getattr(args, name)}: found no examples; expected a JSONL "
                             f"manifest for --{name}")
    counts = ", ".join(f"{k} {len(v)} ({sum(e.image is not None for e in v)} images, "
                       f"{sum(e.text is not None for e in v)} texts)" for k, v in splits.items())
    what = config.fusion if config.modality == "both" else f"{config.modality} only"
    _say(f"{PROG} classify: {counts}; {what}, on {device}")
    run = train_classifier(splits["train"], splits["dev"], splits["test"], config=config,
                           progress=not args.no_progress)
    if not is_main_process():  # under torchrun, rank 0 alone reports and writes the files
        return 0
    print(f"\nbest dev {config.metric}: {run.dev_score:.4f}\n")
    print("test, per class (scikit-learn):")
    print(run.test.report.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\ntest accuracy: {run.test.accuracy:.4f}\ntest macro-F1: {run.test.macro_f1:.4f}")
    run.save(args.out / "model.pt")
    metrics = {**run.metrics(), "files": {k: str(getattr(args, k)) for k in ("train", "dev", "test")},
               "image_root": str(root)}
    write_json(args.out / "metrics.json", metrics)
    probs = run.predict_proba(splits["test"])  # (N, C)
    with open(args.out / "predictions.jsonl", "w", encoding="utf-8") as f:
        for example, p in zip(splits["test"], probs, strict=True):
            record = {"line": example.line, "label": example.label,
                      "predicted": run.classes[int(p.argmax())],
                      "probabilities": {str(c): float(v) for c, v in zip(run.classes, p,
                                                                          strict=True)}}
            f.write(json.dumps(record) + "\n")
    print(f"\nwrote {args.out / 'metrics.json'}, {args.out / 'model.pt'}, "
          f"{args.out / 'predictions.jsonl'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 bad input or usage).

    Args:
        argv: the arguments without the program name (default: ``sys.argv[1:]``).

    Examples:
        >>> main(["ner", "--train", "train.txt", "--dev", "dev.txt", "--test", "test.txt",
        ...       "--epochs", "3", "--out", "runs/demo"])  # doctest: +SKIP
        0
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help (0) or a usage error (2): return, do not exit
        return int(stop.code or 0)
    try:
        return args.handler(args)
    except (ValueError, ImportError, FileNotFoundError, IsADirectoryError,
            PermissionError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return 2

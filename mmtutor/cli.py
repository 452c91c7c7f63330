"""The command line: ``python -m mmtutor ner ...`` (or the ``mmtutor`` console script).

``ner`` trains a (multimodal) named entity tagger on CoNLL-style or Twitter-2015/2017 files,
keeps the epoch with the best entity-level F1 on the development file, prints the seqeval
report on the test file (and the token-level micro F1 with ``O`` counted, which is *not* NER
F1), and writes ``metrics.json``, ``model.pt`` and ``predictions.txt`` to ``--out``. It calls
:func:`mmtutor.tasks.train_ner`, the function the book's NER chapter uses.

Errors in the input (a malformed line, a missing image, an unavailable device) end the run
with one line on stderr, ``mmtutor ner: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main", "build_parser"]

PROG = "mmtutor"
_ENCODERS = ("cnn-bilstm", "bilstm", "minilm")  # mirrors mmtutor.tasks.ner.NER_ENCODERS
_HEADS = ("crf", "softmax")


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr (no usage block)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _fusion_names() -> list[str]:
    from mmtutor.tasks.ner import NER_FUSIONS

    return list(NER_FUSIONS)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``mmtutor`` and its ``ner`` command."""
    parser = _Parser(
        prog=PROG,
        description="Companion tools of the book 'Multimodal Fusion, Hands-On'.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    ner = commands.add_parser(
        "ner",
        help="train and evaluate a (multimodal) named entity tagger",
        description=(
            "Train a named entity tagger, keep the epoch with the best entity-level F1 on\n"
            "--dev, print the seqeval report on --test, and write metrics.json, model.pt and\n"
            "predictions.txt to --out. Text only unless --images is given (Twitter format).\n"
            "Any tag set works (Twitter-2015 uses OTHER)."
        ),
        epilog=(
            "examples:\n"
            "  python -m mmtutor ner --train train.txt --dev valid.txt --test test.txt\n"
            "  python -m mmtutor ner --format twitter --images twitter2015/images "
            "--fusion gated \\\n"
            "      --train twitter2015/train.txt --dev twitter2015/valid.txt "
            "--test twitter2015/test.txt"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = ner.add_argument_group("data")
    data.add_argument("--train", required=True, type=Path, metavar="FILE",
                      help="training file (required); vocabularies are built from it")
    data.add_argument("--dev", required=True, type=Path, metavar="FILE",
                      help="development file (required); selects the epoch by entity F1")
    data.add_argument("--test", required=True, type=Path, metavar="FILE",
                      help="test file (required); scored once, at the end")
    data.add_argument("--format", choices=("conll", "twitter"), default="conll",
                      help="'conll': token ... tag per line, blank line between sentences, "
                           "-DOCSTART- skipped; 'twitter': an IMGID:<id> line starts each "
                           "tweet (Twitter-2015/2017). IOB1/IOB2/IOBES tags are converted "
                           "to IOB2. (default: %(default)s)")
    data.add_argument("--images", type=Path, metavar="DIR", default=None,
                      help="folder of <id>.jpg images for --format twitter; without it the "
                           "tagger reads the text only (default: none)")
    data.add_argument("--missing-images", choices=("error", "mask"), default="error",
                      help="a tweet whose image file is absent: 'error' stops with file:line, "
                           "'mask' marks the image missing and the fusion does without it "
                           "(default: %(default)s)")
    model = ner.add_argument_group("model")
    model.add_argument("--encoder", choices=_ENCODERS, default="cnn-bilstm",
                       help="text encoder: 'cnn-bilstm' (BiLSTM over words plus a character "
                            "CNN, Ma & Hovy 2016: rare words still have a spelling), 'bilstm' "
                            "(words only), 'minilm' (frozen pretrained MiniLM-L6 over "
                            "sub-words; needs mmtutor[pretrained] and --head softmax; slow on "
                            "a CPU) (default: %(default)s)")
    model.add_argument("--head", choices=_HEADS, default="crf",
                       help="'crf': a linear-chain CRF scores whole tag sequences (Viterbi "
                            "decoding, only valid BIO); 'softmax': one decision per token "
                            "(default: %(default)s)")
    model.add_argument("--fusion", metavar="NAME", default=None,
                       help="how the image joins each token, one of: "
                            + ", ".join(_fusion_names())
                            + ". Needs --images (default: 'gated' when --images is given, "
                              "else none: text only)")
    model.add_argument("--dim", type=int, default=64,
                       help="size of word and image vectors (BiLSTM: dim/2 per direction) "
                            "(default: %(default)s)")
    model.add_argument("--dropout", type=float, default=0.0,
                       help="dropout of the encoder and the emission head (default: %(default)s)")
    train = ner.add_argument_group("training")
    train.add_argument("--epochs", type=int, default=10,
                       help="passes over the training file (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=16,
                       help="sentences per training batch (default: %(default)s)")
    train.add_argument("--lr", type=float, default=5e-3,
                       help="AdamW learning rate, annealed to 0 by a cosine schedule "
                            "(default: %(default)s)")
    train.add_argument("--patience", type=int, default=None,
                       help="stop after this many epochs without a better dev F1 "
                            "(default: never)")
    train.add_argument("--image-size", type=int, default=32,
                       help="side, in pixels, that images are resized to (default: %(default)s)")
    train.add_argument("--device", default="auto",
                       help="'auto' (CUDA, then Apple MPS, then CPU), 'cpu', 'cuda' or "
                            "'cuda:N' (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0,
                       help="seeds initial weights, batch order and dropout (default: %(default)s)")
    output = ner.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path("runs/ner"), metavar="DIR",
                        help="where metrics.json, model.pt and predictions.txt go "
                             "(created if needed) (default: %(default)s)")
    output.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar over the epochs")
    ner.set_defaults(handler=_run_ner)
    return parser


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
    if args.fusion is not None and args.fusion not in _fusion_names():
        raise ValueError(f"--fusion {args.fusion!r} is not a tagger fusion; choose one of "
                         f"{', '.join(_fusion_names())}")
    if args.images is not None and args.fusion is None:
        args.fusion = "gated"
    if args.encoder == "minilm" and args.head == "crf":
        raise ValueError("--encoder minilm needs --head softmax: [CLS], [SEP] and the non-first "
                         "pieces of a word carry no tag (-100), and a CRF must score every position")


def _run_ner(args: argparse.Namespace) -> int:
    _check(args)
    from mmtutor.tasks.ner import NERConfig, image_paths, train_ner, write_conll
    from mmtutor.utils import get_device

    device = get_device(args.device)  # a clear error now, not after reading the data
    config = NERConfig(encoder=args.encoder, head=args.head, fusion=args.fusion, dim=args.dim,
                       dropout=args.dropout, epochs=args.epochs, lr=args.lr,
                       batch_size=args.batch_size, patience=args.patience,
                       image_size=args.image_size, seed=args.seed, device=str(device))
    corpora = _read(args)
    images = None
    if config.fusion is not None:
        images = tuple(image_paths(corpora[name]) for name in ("train", "dev", "test"))
    sizes = ", ".join(f"{k} {len(v)}" for k, v in corpora.items())
    mode = "text only" if images is None else f"text + image ({config.fusion})"
    print(f"{PROG} ner: {sizes} sentences; {config.encoder}-{config.head}, {mode}, on {device}")
    run = train_ner(corpora["train"], corpora["dev"], corpora["test"], images=images,
                    config=config, progress=not args.no_progress)
    print(f"\nbest dev entity F1: {run.dev_f1:.4f}\n")
    print("test, entity level (seqeval, strict IOB2):")
    print(run.test.entity_report.to_string(float_format=lambda v: f"{v:.4f}"))
    print(f"\ntest entity F1: {run.test.entity_f1:.4f}")
    print(f"test token-level micro F1 with O counted: {run.test.token_f1:.4f} "
          "(token accuracy; not comparable with entity F1)")
    args.out.mkdir(parents=True, exist_ok=True)
    run.save(args.out / "model.pt")
    metrics = run.metrics()
    metrics["files"] = {k: str(getattr(args, k)) for k in ("train", "dev", "test")}
    metrics["format"] = args.format
    metrics["images"] = None if args.images is None else str(args.images)
    with open(args.out / "metrics.json", "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    test = corpora["test"]
    image_ids = [s.image_id for s in test] if args.format == "twitter" else None
    write_conll(args.out / "predictions.txt", test, predicted=run.test.predicted,
                image_ids=image_ids)
    print(f"\nwrote {args.out / 'metrics.json'}, {args.out / 'model.pt'}, "
          f"{args.out / 'predictions.txt'}")
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

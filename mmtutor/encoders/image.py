"""Image encoders: a small CNN trained from scratch and a ResNet-18.

Both take ``image (B, 3, H, W)`` and return an :class:`~mmtutor.encoders.output.EncoderOutput`
whose ``sequence`` holds the cells of the last feature map (``T = H' * W'`` "visual tokens",
mask all True, the regions attention-based fusion attends over) and whose ``pooled`` vector is
their global average (Lin et al., 2014).

References:
    Lin, M., Chen, Q. & Yan, S. (2014). Network In Network. ICLR (global average pooling).
    Ioffe, S. & Szegedy, C. (2015). Batch Normalization. ICML.
    He, K., Zhang, X., Ren, S. & Sun, J. (2016). Deep Residual Learning for Image
    Recognition. CVPR.
    Chen, T., Kornblith, S., Norouzi, M. & Hinton, G. (2020). A Simple Framework for
    Contrastive Learning of Visual Representations (SimCLR). ICML, Appendix B.9.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from mmtutor.encoders.output import EncoderOutput
from mmtutor.utils import check_tensor

__all__ = ["SmallCNN", "ResNet18Encoder", "check_image"]


def check_image(image: object, channels: int = 3) -> Tensor:
    """Check that ``image`` is a float batch of shape ``(B, channels, H, W)``; return it.

    Raises:
        ValueError: naming the shape got, the shape wanted and the likely fix.
    """
    wanted = f"(B, {channels}, H, W)"
    if isinstance(image, Tensor) and image.dim() == 3:
        raise ValueError(
            f"expected image of shape {wanted}, got {tuple(image.shape)}; add a batch dimension "
            "(image.unsqueeze(0))"
        )
    if isinstance(image, Tensor) and image.dim() == 4 and image.shape[1] != channels:
        hint = (
            "; channels come first, use image.permute(0, 3, 1, 2)"
            if image.shape[-1] == channels
            else ""
        )
        raise ValueError(f"expected image of shape {wanted}, got {tuple(image.shape)}{hint}")
    return check_tensor("image", image, ("B", channels, "H", "W"), dtype="float")


def _cells(features: Tensor) -> EncoderOutput:
    """Turn a feature map ``(B, d, H', W')`` into ``H' * W'`` visual tokens and their mean."""
    sequence = features.flatten(2).transpose(1, 2)  # (B, H'*W', d)
    mask = torch.ones(sequence.shape[:2], dtype=torch.bool, device=sequence.device)  # (B, H'*W')
    return EncoderOutput(sequence.mean(dim=1), sequence, mask)  # pooled: global average pool


class SmallCNN(nn.Module):
    """A small CNN: ``len(channels)`` blocks of conv 3x3 - BatchNorm - ReLU - max-pool 2x2.

    Each block halves the resolution, so a 32x32 image becomes a 4x4 map of 16 cells with
    the default three blocks. BatchNorm (Ioffe & Szegedy, 2015) lets it train fast from scratch.

    Args:
        in_channels: channels of the input image.
        channels: output channels of each block.
        dim: if given, a 1x1 convolution projects the last map to ``dim`` channels;
            ``output_dim = dim`` or ``channels[-1]``.

    Inputs:
        image: ``(B, in_channels, H, W)`` float, ``H, W >= 2 ** len(channels)``.

    Returns:
        ``EncoderOutput``: ``pooled (B, d)``, ``sequence (B, H' * W', d)`` with
        ``H' = H // 2 ** len(channels)``, ``mask (B, H' * W')`` all True.

    Examples:
        >>> out = SmallCNN()(torch.randn(2, 3, 32, 32))
        >>> out.pooled.shape, out.sequence.shape
        (torch.Size([2, 64]), torch.Size([2, 16, 64]))
    """

    def __init__(
        self, in_channels: int = 3, channels: Sequence[int] = (16, 32, 64), dim: int | None = None
    ) -> None:
        super().__init__()
        if len(channels) == 0:
            raise ValueError("channels must name at least one block, got ()")
        self.in_channels = in_channels
        blocks: list[nn.Module] = []
        for c_in, c_out in zip((in_channels, *channels[:-1]), channels, strict=True):
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),  # BatchNorm has the bias
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
        self.features = nn.Sequential(*blocks)
        self.proj = nn.Identity() if dim is None else nn.Conv2d(channels[-1], dim, 1)
        self.output_dim = channels[-1] if dim is None else dim
        self.num_blocks = len(channels)

    def forward(self, image: Tensor) -> EncoderOutput:
        """Encode a batch of images (shapes in the class docstring)."""
        check_image(image, self.in_channels)
        size = 2**self.num_blocks  # each block halves the resolution
        if min(image.shape[-2:]) < size:
            raise ValueError(
                f"image must be at least {size}x{size} for {self.num_blocks} pooling blocks, "
                f"got {tuple(image.shape)}"
            )
        x = self.features(image)  # (B, channels[-1], H', W')
        x = self.proj(x)  # (B, d, H', W')
        return _cells(x)


def _read_state(path: Path) -> dict[str, Tensor]:
    """The ResNet-18 state dict in ``path``, keys normalised, ``fc.*`` dropped."""
    if not path.is_file():
        raise ValueError(f"weights_path={str(path)!r} is not a file")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"weights_path must hold a state dict, got {type(state).__name__}")
    # Accept torchvision's keys, this encoder's ("backbone.") and DataParallel's ("module.").
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if not k.startswith("fc.")}


def _has_small_stem(state: dict[str, Tensor]) -> bool:
    """Whether ``state`` holds the 3x3 ``small_input`` stem rather than the 7x7 one."""
    conv1 = state.get("conv1.weight")
    return isinstance(conv1, Tensor) and tuple(conv1.shape[-2:]) == (3, 3)


class ResNet18Encoder(nn.Module):
    """ResNet-18 (He et al., CVPR 2016) without its classifier, from torchvision.

    Nothing is downloaded unless you ask: with ``weights=None`` and ``weights_path=None`` the
    network starts random. ``weights_path`` loads a local state-dict file (e.g. ImageNet weights
    saved once with ``torch.save(resnet18(weights="DEFAULT").state_dict(), path)``); images
    should then be normalised with the ImageNet mean and standard deviation.

    Args:
        weights: torchvision weights (``"DEFAULT"``, ``"IMAGENET1K_V1"`` or a
            ``ResNet18_Weights``), passed to ``torchvision.models.resnet18``; torchvision
            downloads them into its cache the first time. ``None`` for random weights.
        weights_path: a local file with a ResNet-18 state dict (the ``fc.*`` keys are ignored).
        freeze: if True, no parameter is trained and the network stays in eval mode
            (BatchNorm keeps its statistics), i.e. a fixed feature extractor. A new
            ``small_input`` stem is the exception: it stays trainable (and follows
            ``train()``/``eval()``), since a frozen random stem would never learn.
        small_input: replace the 7x7 stride-2 stem and its max-pool by a 3x3 stride-1
            convolution (with a fresh BatchNorm), the usual adaptation to 32x32 images (He
            et al., 2016, Sec. 4.2; SimCLR, Chen et al., 2020, App. B.9): a 32x32 image then
            ends as a 4x4 map instead of 1x1. The weights (``weights``, or a ``weights_path``
            of the 7x7 network) are loaded first and the stem is swapped after, so every
            other layer keeps them; the new stem is random. A ``weights_path`` saved from a
            ``small_input`` encoder (3x3 stem) is loaded whole, stem included.

    Inputs:
        image: ``(B, 3, H, W)`` float.

    Returns:
        ``EncoderOutput``: ``pooled (B, 512)``, ``sequence (B, H' * W', 512)`` with
        ``H' = ceil(H / 32)`` (``H / 8`` with ``small_input``), ``mask`` all True.

    Examples:
        >>> enc = ResNet18Encoder(small_input=True)
        >>> enc(torch.randn(2, 3, 32, 32)).sequence.shape
        torch.Size([2, 16, 512])
    """

    def __init__(
        self,
        *,
        weights: object = None,
        weights_path: str | Path | None = None,
        freeze: bool = False,
        small_input: bool = False,
    ) -> None:
        super().__init__()
        from torchvision.models import resnet18  # lazy: keeps `import mmtutor` fast

        if weights is not None and weights_path is not None:
            raise ValueError("give weights or weights_path, not both")
        net = resnet18(weights=weights)
        net.fc = nn.Identity()  # the ImageNet classifier is not part of an encoder
        self.backbone = net
        self.output_dim = 512
        self.freeze = freeze
        path = None if weights_path is None else Path(weights_path)
        state = None if path is None else _read_state(path)
        # A file with a 3x3 stem was saved from a small-input encoder: swap, then load it all.
        # Any other file fits the 7x7 stem: load it, then swap, so that every other layer
        # keeps its weights (e.g. ImageNet features behind a stem made for 32x32 images).
        stem_saved = state is not None and _has_small_stem(state)
        if state is not None and not (small_input and stem_saved):
            self._load(state, path)
        if small_input:
            net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
            net.bn1 = nn.BatchNorm2d(64)  # the old statistics describe the old conv's outputs
            net.maxpool = nn.Identity()
            if stem_saved:
                self._load(state, path)
        # A new random stem must learn even when the rest is frozen, or it stays random.
        self.trainable_stem = small_input and not stem_saved
        if freeze:
            self.backbone.requires_grad_(False)
            if self.trainable_stem:
                self._stem().requires_grad_(True)
            self.train(self.training)

    def _stem(self) -> nn.ModuleList:
        """The stem's layers with weights (``conv1``, ``bn1``)."""
        return nn.ModuleList([self.backbone.conv1, self.backbone.bn1])

    def _load(self, state: dict[str, Tensor], path: Path) -> None:
        try:
            missing, unexpected = self.backbone.load_state_dict(state, strict=False)
        except RuntimeError as err:  # a tensor of the wrong shape, e.g. a 3x3 stem into 7x7
            hint = " (it has a 3x3 stem: pass small_input=True)" if _has_small_stem(state) else ""
            raise ValueError(
                f"weights_path={str(path)!r} does not fit this ResNet-18{hint}: {err}"
            ) from err
        if missing or unexpected:
            raise ValueError(
                f"weights_path={str(path)!r} is not a ResNet-18 state dict: missing keys "
                f"{missing[:5]}, unexpected keys {unexpected[:5]}"
            )

    def train(self, mode: bool = True) -> ResNet18Encoder:
        """Set training mode; a frozen backbone stays in eval mode (fixed BatchNorm).

        With ``freeze`` and a new ``small_input`` stem, the stem follows ``mode``: it trains.
        """
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
            if self.trainable_stem:
                self._stem().train(mode)
        return self

    def forward(self, image: Tensor) -> EncoderOutput:
        """Encode a batch of images (shapes in the class docstring)."""
        check_image(image, 3)
        net = self.backbone  # sizes for the ImageNet stem; with small_input, 4x larger
        x = net.maxpool(net.relu(net.bn1(net.conv1(image))))  # (B, 64, H/4, W/4)
        x = net.layer1(x)  # (B, 64, H/4, W/4)
        x = net.layer2(x)  # (B, 128, H/8, W/8)
        x = net.layer3(x)  # (B, 256, H/16, W/16)
        x = net.layer4(x)  # (B, 512, H/32, W/32)
        return _cells(x)

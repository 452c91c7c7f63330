"""mmtutor: the companion package of *Multimodal Fusion, Hands-On*."""

from mmtutor.utils import get_device, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "get_device", "seed_everything"]

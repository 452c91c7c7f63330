"""Sphinx extension: run the book's notebook kernels with CurveZMQ transport encryption.

Why: ipykernel >= 7.3 (ipython/ipykernel#1515) logs, at every kernel start,
``[IPKernelApp] WARNING | Kernel is running over TCP without encryption`` unless the kernel
manager gave it CurveZMQ keys. jupyter_client >= 8.9 can provision them
(``KernelManager.transport_encryption``), but its default is ``"disabled"``, and myst-nb 1.4
starts each kernel through ``jupyter_cache``'s ``single_nb_execution`` -> ``nbclient`` with an
empty traitlets config and no setting to pass one. So ``make book`` printed the warning once
per notebook, and the kernel's code and outputs really did travel in plain text over TCP.

What: this extension hands that call the one setting myst-nb cannot,
``KernelManager.transport_encryption = "auto"``: keys are provisioned when the kernelspec
declares ``"supported_encryption": ["curve"]`` (ipykernel >= 7.3 does), and an older kernel
starts as before. Nothing else is changed and no warning is filtered.

Used from ``_config.yml`` (``sphinx.local_extensions``); Jupyter Book 1 only.
"""

from __future__ import annotations

import functools
from typing import Any

POLICY = "auto"


def _encrypted(execute: Any) -> Any:
    """``execute`` with ``config.KernelManager.transport_encryption = POLICY`` added."""
    from traitlets.config import Config

    @functools.wraps(execute)
    def run(*args: Any, **kwargs: Any) -> Any:
        config = Config(kwargs.pop("config", None) or {})
        config.KernelManager.setdefault("transport_encryption", POLICY)
        return execute(*args, config=config, **kwargs)

    run.__wrapped_for_encryption__ = True  # type: ignore[attr-defined]
    return run


def setup(app: Any) -> dict[str, Any]:
    import zmq
    from myst_nb.core.execute import direct
    from sphinx.errors import ExtensionError

    if not zmq.has("curve"):  # pyzmq built without libsodium: nothing to turn on
        return {"parallel_read_safe": True}
    execute = getattr(direct, "single_nb_execution", None)
    if execute is None:
        raise ExtensionError(
            "tools/encrypted_kernels.py: myst_nb.core.execute.direct.single_nb_execution is "
            "gone (myst-nb changed); update this extension or remove it from _config.yml"
        )
    if not getattr(execute, "__wrapped_for_encryption__", False):
        direct.single_nb_execution = _encrypted(execute)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

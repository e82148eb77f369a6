"""Loading one registry model onto a device, with a one-time GGUF -> safetensors conversion."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from importlib import import_module, metadata
from pathlib import Path
from typing import Any

# Never reach a hub at run time: every model comes from disk.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

from core.domain.errors import ModelLoadError, ModelUnavailableError
from core.models.device import choose_device, choose_dtype
from core.models.huggingface.adapter import HuggingFaceModel
from core.models.registry import ModelSpec, availability

log = logging.getLogger(__name__)

_CONVERSION_LOCK = threading.Lock()


def _assemble_chunked_gguf(spec: ModelSpec, target_dir: Path) -> Path:
    """Some packages ship a GGUF in chunks with an `assemble(output_path)` helper."""
    dist = metadata.distribution(spec.source.package or "")
    module_name = (dist.read_text("top_level.txt") or "").split()[0]
    module: Any = import_module(module_name)
    return Path(module.assemble(output_path=target_dir / (spec.source.file or "model.gguf")))


def _convert_gguf(spec: ModelSpec, gguf_path: Path | None, target: Path) -> None:
    """Dequantise the GGUF once and save it as safetensors: later loads take ~0.2 s."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".convert-") as tmp:
        tmp_dir = Path(tmp)
        if gguf_path is None:
            gguf_path = _assemble_chunked_gguf(spec, tmp_dir)
        model_class = AutoModelForCausalLM if spec.kind == "causal" else AutoModel
        tokenizer = AutoTokenizer.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, trust_remote_code=False
        )
        model = model_class.from_pretrained(
            gguf_path.parent, gguf_file=gguf_path.name, trust_remote_code=False
        )
        # The weights are already dequantised to float; drop the GGUF marker so they save.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        out = tmp_dir / "converted"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        # Rename is atomic: a concurrent process sees either nothing or a complete copy.
        try:
            out.rename(target)
        except OSError:
            if not (target / "config.json").exists():
                raise


def resolve_weights_dir(spec: ModelSpec, cache_dir: Path) -> Path:
    """A directory `from_pretrained` can load without network, converting GGUF if needed."""
    where = availability(spec)
    if not where.available:
        raise ModelUnavailableError(f"{spec.label} is not available here: {where.reason}.")
    if not where.gguf:
        assert where.location is not None
        return where.location
    target = cache_dir / f"{spec.id}@{spec.revision}"
    with _CONVERSION_LOCK:
        if not (target / "config.json").exists():
            log.info("converting GGUF to safetensors", extra={"model": spec.id})
            _convert_gguf(spec, where.location, target)
    return target


def load_model(spec: ModelSpec, *, cache_dir: Path, device_preference: str = "auto") -> HuggingFaceModel:
    """Load `spec` with eager attention (so attention weights exist) on the chosen device."""
    started = time.perf_counter()
    device = choose_device(device_preference)
    dtype = choose_dtype(device)
    weights_dir = resolve_weights_dir(spec, cache_dir)
    model_class = AutoModelForCausalLM if spec.kind == "causal" else AutoModel
    try:
        tokenizer = AutoTokenizer.from_pretrained(weights_dir, trust_remote_code=False)
        # safetensors only: pickle-based weights (.bin, .pt) can run code when unpickled.
        model = model_class.from_pretrained(
            weights_dir,
            attn_implementation="eager",
            dtype=dtype,
            trust_remote_code=False,
            use_safetensors=True,
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"{spec.label} failed to load: {exc}") from exc
    model.to(device)
    model.eval()
    return HuggingFaceModel(
        spec, model, tokenizer, device=str(device), load_seconds=time.perf_counter() - started
    )


def clear_converted(spec: ModelSpec, cache_dir: Path) -> None:
    shutil.rmtree(cache_dir / f"{spec.id}@{spec.revision}", ignore_errors=True)


class TokenCounter:
    """A model's tokenizer alone: counts tokens before any rate limit or weight load.

    Loading a tokenizer takes milliseconds to a second and no model memory, so the service
    can refuse an over-long input before it spends a user's quota or loads the weights.
    """

    def __init__(self, spec: ModelSpec, weights_dir: Path) -> None:
        self.spec = spec
        self._tokenizer = AutoTokenizer.from_pretrained(weights_dir, trust_remote_code=False)

    def count(self, text: str, *, add_special_tokens: bool = True) -> int:
        return len(self._tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])

    def chat_prompt(self, text: str) -> str | None:
        """``text`` as the model's chat template renders a user turn; None without a template."""
        if not self.spec.chat_template or not self._tokenizer.chat_template:
            return None
        messages = [{"role": "user", "content": text}]
        return str(self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))


_COUNTERS: dict[tuple[str, str], TokenCounter] = {}
_COUNTERS_LOCK = threading.Lock()


def token_counter(spec: ModelSpec, *, cache_dir: Path) -> TokenCounter:
    """The `TokenCounter` of ``spec`` (one per model revision and process)."""
    key = (spec.id, spec.revision)
    with _COUNTERS_LOCK:
        counter = _COUNTERS.get(key)
    if counter is None:
        weights_dir = resolve_weights_dir(spec, cache_dir)  # unavailable: its own message
        try:
            counter = TokenCounter(spec, weights_dir)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"{spec.label}'s tokenizer failed to load: {exc}") from exc
        with _COUNTERS_LOCK:
            counter = _COUNTERS.setdefault(key, counter)
    return counter

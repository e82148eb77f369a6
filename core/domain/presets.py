"""Which screen a preset fills, and the one schema of its settings' widgets.

A preset setting is a field of the screen's settings (`core.store.presets.GenerateSettings`,
`CompareSettings`), dotted into nested ones (``generation.top_p``). Each screen's keys
dataclass names the widget key of every setting, so the page that draws the widgets and the
preset code that fills and reads them use one spelling: ``key=GENERATE.top_p``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any


class PresetScreen(StrEnum):
    """The screen a preset's settings fill (revision 0005)."""

    GENERATE = "generate"
    COMPARE = "compare"


def _widget(key: str, setting: str) -> Any:
    return field(default=key, metadata={"setting": setting})


@dataclass(frozen=True)
class GenerateKeys:
    """The Generate screen's widget key for each preset setting."""

    model: str = _widget("generate.model", "model_id")
    mode: str = _widget("generate.mode", "mode")
    max_new_tokens: str = _widget("generate.max_new_tokens", "generation.max_new_tokens")
    do_sample: str = _widget("generate.do_sample", "generation.do_sample")
    temperature: str = _widget("generate.temperature", "generation.temperature")
    top_p: str = _widget("generate.top_p", "generation.top_p")
    top_k: str = _widget("generate.top_k", "generation.top_k")
    seed: str = _widget("generate.seed", "generation.seed")
    chat_template: str = _widget("generate.chat_template", "generation.use_chat_template")
    top_k_next: str = _widget("generate.top_k_next", "top_k_next")
    redact: str = _widget("generate.redact", "redact")
    # The analysis view's pickers (`ui.analysis_view`, key prefix "generate").
    bertviz_view: str = _widget("generate.bv_view", "view.bertviz_view")
    layer: str = _widget("generate.hm.layer", "view.layer")
    head: str = _widget("generate.hm.head", "view.head")


@dataclass(frozen=True)
class CompareKeys:
    """The Compare screen's widget key for each preset setting."""

    model_a: str = _widget("compare.model_a", "model_a")
    model_b: str = _widget("compare.model_b", "model_b")
    generate: str = _widget("compare.generate", "generate")
    max_new_tokens: str = _widget("compare.max_new_tokens", "generation.max_new_tokens")
    do_sample: str = _widget("compare.do_sample", "generation.do_sample")
    temperature: str = _widget("compare.temperature", "generation.temperature")
    top_p: str = _widget("compare.top_p", "generation.top_p")
    top_k: str = _widget("compare.top_k", "generation.top_k")
    seed: str = _widget("compare.seed", "generation.seed")
    granularity: str = _widget("compare.granularity", "granularity")
    top_k_next: str = _widget("compare.top_k_next", "top_k_next")


GENERATE = GenerateKeys()
COMPARE = CompareKeys()
WIDGET_KEYS: dict[PresetScreen, GenerateKeys | CompareKeys] = {
    PresetScreen.GENERATE: GENERATE,
    PresetScreen.COMPARE: COMPARE,
}
# The settings that name a model: a preset's model may not be offered on every server.
MODEL_SETTINGS = ("model_id", "model_a", "model_b")


def widget_settings(keys: GenerateKeys | CompareKeys) -> dict[str, str]:
    """``{setting: widget key}`` of one screen, in the order its keys are declared."""
    return {item.metadata["setting"]: getattr(keys, item.name) for item in fields(keys)}

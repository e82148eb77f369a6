"""Prepare bundled models ahead of the first request: `python -m core.models.warmup [--convert-only]`.

Converting GGUF weights to safetensors takes 15-50 s once; doing it at image build or
deploy time keeps the first user from waiting.
"""

from __future__ import annotations

import argparse
import logging

from core.domain.settings import get_settings
from core.models.huggingface.loading import resolve_weights_dir
from core.models.registry import availability, load_registry

log = logging.getLogger("headlight.warmup")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--convert-only", action="store_true", help="convert GGUF files only")
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    for spec in load_registry(settings.registry_path):
        where = availability(spec)
        if not where.available:
            log.info("skip %s: %s", spec.id, where.reason)
            continue
        path = resolve_weights_dir(spec, settings.model_cache_dir)
        log.info("ready %s: %s", spec.id, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""HTML and Markdown built from user text. Everything user-supplied passes through
`html.escape` (HTML) or `markdown_text` (Markdown: captions, notices, alerts)."""

from __future__ import annotations

import html
import re

from core.domain.analysis import Analysis

# Every character Streamlit's Markdown gives a meaning to (links, images, emphasis, code,
# headings, lists, tables, HTML, LaTeX, emoji shortcodes).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")


def markdown_text(text: str) -> str:
    """``text`` shown literally inside Streamlit Markdown (no links, images, emphasis or HTML)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def prompt_and_continuation_html(analysis: Analysis) -> str:
    """The prompt in plain text and the continuation highlighted, both escaped."""
    # Newlines become <br>: Markdown would otherwise split the block into paragraphs.
    prompt = html.escape(analysis.prompt_text).replace("\n", "<br>")
    continuation = html.escape(analysis.generated_text).replace("\n", "<br>")
    body = prompt
    if continuation:
        body += (
            '<span class="hl-continuation" title="generated" '
            'style="background:#fff3bf;border-bottom:2px solid #f59f00">'
            f"{continuation}</span>"
        )
    return (
        '<div class="hl-text" style="white-space:pre-wrap;font-family:ui-monospace,monospace;'
        'border:1px solid #ddd;border-radius:6px;padding:0.75em;line-height:1.5">'
        f"{body}</div>"
    )


def next_token_rows(analysis: Analysis) -> list[dict[str, object]]:
    """One table row per step: the token that followed and the top alternatives."""
    rows: list[dict[str, object]] = []
    for step in analysis.next_tokens:
        rows.append(
            {
                "position": step.position,
                "token": "(next)" if step.token is None else repr(step.token)[1:-1],
                "probability": step.probability,
                "top-k": "  ".join(f"{repr(t)[1:-1]} {p:.1%}" for t, p in step.candidates),
            }
        )
    return rows

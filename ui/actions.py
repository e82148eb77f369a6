"""One way for a screen to act on a click: run one service call, keep its outcome in session
state, and show it at the top of the next run.

Buttons usually act in callbacks, which Streamlit runs before the script; the outcome is
therefore flashed rather than drawn where the button is. Each service call opens and commits
its own transaction; a failure (a `ValueError`: every `HeadlightError`, validation errors and
`StorageError`) becomes the error shown, and nothing of the action is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

from core.domain.identity import Viewer
from ui.session import current_viewer

# ("success" | "warning" | "error", message): an outcome an action reports without failing.
Notice = tuple[str, str]
# One user action: a service call for the viewer. A message or notice it returns is flashed;
# anything else it returns is ignored.
Work = Callable[[Viewer], object]


def _plain(text: str) -> str:
    return text


@dataclass(frozen=True)
class Flash:
    """Where one screen (or panel) keeps the outcome of its last action.

    ``escape`` turns a message into the Markdown shown (messages may quote user text).
    """

    key: str
    escape: Callable[[str], str] = _plain

    def act(self, work: Work, *, success: str | None = None, failure: str = "") -> bool:
        """Run ``work(viewer)``; flash what it returns (else ``success``) or its error, after
        ``failure``. Returns whether it succeeded."""
        try:
            outcome = work(current_viewer())
        except ValueError as exc:
            self.notify("error", failure + str(exc))
            return False
        if isinstance(outcome, tuple):
            self.notify(*outcome)
            return outcome[0] != "error"
        message = outcome if isinstance(outcome, str) else success
        if message:
            self.notify("success", message)
        return True

    def notify(self, kind: str, message: str) -> None:
        st.session_state[self.key] = (kind, message)

    def show(self) -> None:
        """The kept outcome, once, in a slot that is there with or without one.

        Everything below keeps its place whether a message shows or not, so a fragment
        further down (whose id follows its place on the page) keeps its id from run to run:
        a run redraws it in place, and a click on it is never refused for naming a fragment
        that the previous run dropped.
        """
        slot = st.empty()
        kind, message = st.session_state.pop(self.key, (None, None))
        if kind is None:
            return
        alert = {"error": slot.error, "warning": slot.warning}.get(kind, slot.success)
        alert(self.escape(message))

"""The chat messages of one streamed turn, and the small helpers of the streaming handlers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional, TypeVar

History = list[dict[str, Any]]

T = TypeVar("T")


def _children(folder: Path) -> list[Path]:
    """The sub-folders of `folder` (none when it is gone or unreadable)."""
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def _last(values: Iterator[T]) -> T:
    """The last value a generator yields (the handlers' non-streaming form)."""
    last = None
    for last in values:
        pass
    assert last is not None, "a handler yields at least once"
    return last


def _skip() -> Any:
    """An output that Gradio leaves as it is."""
    import gradio as gr

    return gr.skip()


def _unchanged(n: int) -> list[Any]:
    """`n` outputs that Gradio leaves as they are (the panels while a turn streams)."""
    return [_skip() for _ in range(n)]


class TurnView:
    """The chat messages of one streamed turn (events of `Session.stream_turn`): the steps as one
    collapsed "thought" message, spinning while the turn runs, then the answer below it: the
    draft as the LLM writes it, replaced by the final (grounded) reply at the end."""

    def __init__(self, history: History) -> None:
        self.base = list(history)  # the conversation up to and including the user's message
        self.steps: list[str] = []
        self.current = "starting"
        self.draft = ""
        self.reply: Optional[str] = None
        self.rejected = False

    def add(self, event: dict[str, Any]) -> bool:
        """Take one event; True when what the user sees changed."""
        kind = event.get("type")
        if kind == "start":
            self.current = event["label"]
        elif kind == "step":
            line = f"- {event['label']}"
            if event.get("tool"):
                line += f" — `{event['tool']}` {event.get('detail', '')}"
            elif event.get("detail"):
                line += f": {event['detail']}"
            self.steps.append(line)
        elif kind == "token":
            self.draft = event["draft"]
        elif kind == "rejected":
            self.steps.append(f"- ⚠️ {event['label']}")
            self.current, self.draft, self.rejected = "rewriting the answer", "", True
        elif kind == "final":
            self.reply = event["result"]["reply"] or "(no answer)"
            if self.rejected:
                self.steps.append("- the streamed draft was replaced by the grounded answer below")
        else:
            return False
        return True

    def fail(self, message: str) -> None:
        self.reply = f"error: {message}"

    def history(self) -> History:
        out = [dict(m) for m in self.base]
        done = self.reply is not None
        if not done:  # what runs now in the title, what is finished below it
            out.append({"role": "assistant", "content": "\n".join(self.steps) or "…",
                        "metadata": {"title": f"Working: {self.current}…", "status": "pending"}})
        elif self.steps:
            out.append({"role": "assistant", "content": "\n".join(self.steps),
                        "metadata": {"title": f"Tool steps ({len(self.steps)})", "status": "done"}})
        text = self.reply if done else self.draft
        if text:
            out.append({"role": "assistant", "content": text})
        return out

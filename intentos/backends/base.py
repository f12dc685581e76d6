"""The Backend protocol: messages (+ an optional JSON schema) in, text plus measurements out.

Every model server intentos talks to (llama.cpp in-process, ollama, any OpenAI-compatible
endpoint) is wrapped in one small class with one method, so the Controller never knows
which one it is using.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, Field


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerateOptions(BaseModel):
    """Per-call decoding options; backends ignore what they cannot honour."""

    max_tokens: int = 768
    temperature: float = 0.0
    seed: int | None = 0
    # >1 discourages tokens seen recently: small models otherwise loop inside a long string until max_tokens.
    repeat_penalty: float = 1.0
    # Called with each text fragment as it arrives (streaming backends only).
    on_token: Callable[[str], None] | None = Field(default=None, exclude=True)
    # Checked between fragments; when it returns True the backend stops and raises GenerationCancelled.
    cancelled: Callable[[], bool] | None = Field(default=None, exclude=True)
    # Called with the text so far after each fragment; when it returns True the backend stops and the
    # generation ends with finish_reason STOPPED (the caller has seen enough, e.g. a reply repeating itself).
    stop_when: Callable[[str], bool] | None = Field(default=None, exclude=True)

    model_config = {"arbitrary_types_allowed": True}


class Generation(BaseModel):
    """One model response and what it cost."""

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    ttft_s: float | None = None  # time to first token; None when the backend does not stream
    total_s: float = 0.0
    structured: str = "none"  # how the output was constrained: "grammar", "json_schema", "json_object", "none"
    finish_reason: str | None = None
    # What the server itself measured, in seconds (ollama: total_s, load_s, prompt_eval_s, eval_s); may be empty.
    server_timings: dict[str, float] = Field(default_factory=dict)

    @property
    def tokens_per_s(self) -> float | None:
        decode = self.total_s - (self.ttft_s or 0.0)
        return self.completion_tokens / decode if decode > 0 and self.completion_tokens else None


class GenerationCancelled(Exception):
    """Raised by a backend when GenerateOptions.cancelled() turned true mid-generation."""


STOPPED = "stop_when"  # finish_reason of a generation that GenerateOptions.stop_when ended


class StreamCollector:
    """What every streaming backend does with fragments: keep them, time the first, pass them on, stop on cancel."""

    def __init__(self, options: GenerateOptions) -> None:
        self.options = options
        if options.cancelled is not None and options.cancelled():
            raise GenerationCancelled("cancelled before generation started")
        self.start = time.perf_counter()
        self.parts: list[str] = []
        self.ttft_s: float | None = None

    def add(self, piece: str | None) -> bool:
        """Keep a fragment; True when the caller's stop_when says to stop here."""
        if piece:
            if self.ttft_s is None:
                self.ttft_s = time.perf_counter() - self.start
            self.parts.append(piece)
            if self.options.on_token is not None:
                self.options.on_token(piece)
        if self.options.cancelled is not None and self.options.cancelled():
            raise GenerationCancelled(f"cancelled after {len(self.parts)} fragments")
        return bool(piece) and self.options.stop_when is not None and self.options.stop_when(self.text)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


@runtime_checkable
class Backend(Protocol):
    """A model server. `spec` is the model spec string it was built from (e.g. `llamacpp:smollm2`)."""

    spec: str

    def generate(self, messages: list[Message], schema: dict[str, Any] | None = None,
                 options: GenerateOptions | None = None) -> Generation:
        """Complete the chat; when `schema` is given the text must be JSON that follows it."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the backend is: model, path or URL, settings, for traces and reports."""
        ...

    def reachable(self) -> tuple[bool, str]:
        """Whether the backend can serve now (model file present, server answering) and why not."""
        ...


@runtime_checkable
class Weighing(Protocol):
    """A backend that can say how likely each of a few short answers is as the reply's start (llama.cpp in-process
    reads its logits); the planner's yes/no self-checks need it and are skipped on backends without it."""

    def weigh(self, messages: list[Message], answers: list[str]) -> dict[str, float] | None:
        """Each answer's log-probability as the reply's first token (its spellings "yes", "Yes", " yes" summed),
        or None when this model cannot say."""
        ...

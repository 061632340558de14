"""The optional LLM that writes answers: an OpenAI-compatible chat-completions client."""

from app.llm.client import (
    ChatChunk,
    ChatClient,
    ChatCompletion,
    ChatConfig,
    LLMError,
    LLMStreamBroken,
    Message,
    check_llm,
    make_llm,
)

__all__ = [
    "ChatChunk",
    "ChatClient",
    "ChatCompletion",
    "ChatConfig",
    "LLMError",
    "LLMStreamBroken",
    "Message",
    "check_llm",
    "make_llm",
]

"""The provider base classes of the seed surface (gpt4free-compatible names and behaviour)."""

from __future__ import annotations

from typing import Any, ClassVar

from ..errors import ModelNotSupportedError

__all__ = ["AsyncGeneratorProvider", "ProviderModelMixin"]


class AsyncGeneratorProvider:
    """A provider whose ``create_async_generator`` yields the reply's text as it streams."""

    url: ClassVar[str] = ""
    working: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    needs_auth: ClassVar[bool] = False

    @classmethod
    def create_async_generator(cls, model: str, messages: Any, **kwargs: Any) -> Any:
        raise NotImplementedError


class ProviderModelMixin:
    """Model names, their aliases, and the default."""

    default_model: ClassVar[str] = ""
    models: ClassVar[list[str]] = []
    model_aliases: ClassVar[dict[str, str]] = {}

    @classmethod
    def get_models(cls) -> list[str]:
        return list(cls.models) if cls.models else ([cls.default_model] if cls.default_model else [])

    @classmethod
    def get_model(cls, model: str | None) -> str:
        """Resolve an alias; an empty name means the default. Unknown names are refused."""
        if not model:
            return cls.default_model
        if model in cls.model_aliases:
            return cls.model_aliases[model]
        known = cls.get_models()
        if known and model not in known:
            offered = ", ".join(known + list(cls.model_aliases))
            raise ModelNotSupportedError(f"{cls.__name__} does not offer model {model!r}; it offers: {offered}.")
        return model

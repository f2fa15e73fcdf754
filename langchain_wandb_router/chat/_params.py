"""ChatWandb's request parameters and payloads, and their cache.

:class:`WandbParams` builds what BaseChatOpenAI would send (default and
invocation parameters, the request payload) with the fast converters where
they are proven equal, and keeps the parameters derived from the fields once
per configuration: any field assignment (``__setattr__``) or ``model_copy``
drops them, and a changed ``model_kwargs`` rebuilds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, cast

from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import BaseMessage
from pydantic import PrivateAttr

from langchain_wandb_router.chat._fast_messages import messages_to_dicts
from langchain_wandb_router.chat._payload import (
    DerivedParams,
    fast_payload,
    finish_payload,
    invocation_params,
)
from langchain_wandb_router.chat._settings import WandbSettings
from langchain_wandb_router.chat._structured import response_format_for

__all__ = ["WandbParams"]


class WandbParams(WandbSettings):
    """Parameters and payloads, built once per configuration."""

    # Built once per configuration; a field assignment clears it (__setattr__).
    _params: DerivedParams | None = PrivateAttr(default=None)

    def _derived(self) -> DerivedParams:
        private = self._private()
        derived: DerivedParams | None = private["_params"]
        if derived is None or derived.model_kwargs != self.model_kwargs:
            params = super()._default_params
            if self.enable_thinking is not None:
                params["chat_template_kwargs"] = {
                    "enable_thinking": self.enable_thinking
                }
            if self.cache_salt is not None:
                params["cache_salt"] = self.cache_salt
            derived = DerivedParams(dict(self.model_kwargs), params)
            private["_params"] = derived
        return derived

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in type(self).model_fields:
            self._params = None

    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self:
        """Copy; ``update`` bypasses ``__setattr__``, so drop the cached params."""
        copy = super().model_copy(update=update, deep=deep)
        copy._params = None
        return copy

    def _get_invocation_params(
        self, stop: list[str] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        # Read twice a call (run start and tracing params): BaseChatOpenAI's
        # answer for no stop and no kwargs is kept, the call's go on top.
        params: dict[str, Any] | None = None
        if not self.disable_fast_paths:
            derived = self._derived()
            if derived.invocation is None:
                derived.invocation = super()._get_invocation_params()
            params = invocation_params(derived, stop, kwargs)
        if params is None:
            # Fast paths off, or remote MCP tools (the parent redacts them).
            params = super()._get_invocation_params(stop=stop, **kwargs)
        # Traces key on the invocation params: a pydantic schema class there is
        # neither readable nor serializable, its JSON form is both.
        schema = params.get("response_format")
        if isinstance(schema, type):
            params["response_format"] = response_format_for(
                schema, params.get("strict")
            )
        return params

    @property
    def _default_params(self) -> dict[str, Any]:
        # Built once per configuration; callers get a copy they may change.
        return dict(self._derived().default_params)

    def _get_request_payload(
        self,
        input_: LanguageModelInput,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        # _generate and _stream pass a list of messages: tried as it is (the
        # fast path declines anything but exact message classes).
        if type(input_) is list:
            messages = cast("list[BaseMessage]", input_)
        else:
            messages = self._convert_input(input_).to_messages()
        dicts = None if self.disable_fast_paths else messages_to_dicts(messages)
        if dicts is None:
            messages = self._convert_input(input_).to_messages()
            payload: dict[str, Any] = super()._get_request_payload(
                messages, stop=stop, **kwargs
            )
        else:
            payload = fast_payload(self._default_params, dicts, stop, kwargs)
        return finish_payload(
            payload, messages, kwargs, model=self.model_name, plain=dicts is not None
        )

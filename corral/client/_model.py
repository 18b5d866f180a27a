"""The base of every SDK model: pydantic, plus the dict-style access of the SDK's dict-returning days."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class SubscriptableBaseModel(BaseModel):
    """A pydantic model that also reads like the dicts older SDK versions returned.

    A key counts as present when it was set, or when its field has a non-``None`` default:

    >>> from corral.client._types import Message, Tool
    >>> msg = Message(role='user')
    >>> msg['role'], 'role' in msg, 'content' in msg, 'nope' in msg
    ('user', True, False, False)
    >>> msg['content']
    Traceback (most recent call last):
    KeyError: 'content'
    >>> msg['content'] = 'hi'
    >>> msg['content'], 'content' in msg
    ('hi', True)
    >>> msg['tool_calls'] = None
    >>> 'tool_calls' in msg
    True
    >>> 'type' in Tool()
    True
    >>> msg.get('thinking'), msg.get('nope', 'fallback')
    (None, 'fallback')
    """

    def __getitem__(self, key: str) -> Any:
        if key in self:
            return getattr(self, key)
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def __contains__(self, key: object) -> bool:
        if key in self.model_fields_set:
            return True
        field = type(self).model_fields.get(key) if isinstance(key, str) else None
        return field is not None and field.default is not None

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]``'s attribute if it exists, else ``default`` (unset fields read as ``None``)."""
        return getattr(self, key) if hasattr(self, key) else default

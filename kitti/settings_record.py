"""What every stage's frozen settings dataclass shares: a validated copy and a strict reader."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Mapping, TypeVar

T = TypeVar("T", bound="SettingsRecord")


class SettingsRecord:
    """Mixin for a frozen settings dataclass (``@dataclass(frozen=True) class X(SettingsRecord)``)."""

    def with_(self: T, **changes: Any) -> T:
        """A copy with some fields changed (validated again by ``__post_init__``)."""
        return replace(self, **changes)

    @classmethod
    def from_dict(cls: type[T], values: Mapping[str, Any]) -> T:
        """Settings from :func:`dataclasses.asdict` output (unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}")
        return cls(**values)

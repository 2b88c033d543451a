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


def field_docs(cls: type) -> dict[str, str]:
    """Each documented field of a settings dataclass -> its meaning, from the class docstring.

    The docstring's ``Attributes:`` section holds one entry per field (``name: meaning``) or per
    group (``a, b, c: meaning``), continuation lines indented deeper; the section ends at the
    first line indented less than its entries. Fields the section does not name are absent.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class S:
    ...     '''Doc.
    ...
    ...     Attributes:
    ...         a, b: two sizes
    ...             in pixels.
    ...         c: a count.
    ...     '''
    ...     a: int = 1
    ...     b: int = 2
    ...     c: int = 3
    >>> field_docs(S)
    {'a': 'two sizes in pixels.', 'b': 'two sizes in pixels.', 'c': 'a count.'}
    """
    lines = (cls.__doc__ or "").expandtabs().splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Attributes:")
    except StopIteration:
        return {}
    names = {f.name for f in fields(cls)}
    entries: list[tuple[list[str], list[str]]] = []
    indent = None
    for line in lines[start + 1:]:
        if not line.strip():
            continue
        depth = len(line) - len(line.lstrip())
        if indent is None:
            indent = depth
        if depth < indent:
            break
        head, sep, rest = line.strip().partition(":")
        keys = [k.strip().strip("`") for k in head.split(",")]
        if depth == indent and sep and all(k.isidentifier() for k in keys):
            entries.append((keys, [rest.strip()]))
        elif entries:
            entries[-1][1].append(line.strip())
    return {k: " ".join(t for t in text if t) for keys, text in entries for k in keys if k in names}

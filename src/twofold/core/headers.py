"""Request headers or metadata, read lazily from the raw pairs a transport gives.

Decoding every header on every request costs more than most handlers ever
read, so lookups scan the raw ``(bytes, bytes)`` pairs on demand. Names are
compared case-insensitively; ASGI servers already lowercase them, gRPC
metadata keys are lowercase by spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive view; repeated names join with ", " on ``[]``."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._raw = raw if isinstance(raw, list) else list(raw)

    @classmethod
    def from_strings(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls([(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs])

    def get_all(self, name: str) -> list[str]:
        key = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self._raw if k == key]

    def get_raw(self, name: bytes) -> bytes | None:
        """The first value of a lowercase name, undecoded: the hot-path lookup."""
        for k, v in self._raw:
            if k == name:
                return v
        return None

    def __getitem__(self, name: str) -> str:
        values = self.get_all(name)
        if not values:
            raise KeyError(name)
        return ", ".join(values)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return self.get_raw(name.lower().encode("latin-1")) is not None

    def __iter__(self) -> Iterator[str]:
        seen: dict[str, None] = {}
        for k, _ in self._raw:
            seen.setdefault(k.decode("latin-1").lower(), None)
        return iter(seen)

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._raw})

    def raw(self) -> list[tuple[bytes, bytes]]:
        return list(self._raw)

    def __repr__(self) -> str:
        return f"Headers({list(self.items())!r})"

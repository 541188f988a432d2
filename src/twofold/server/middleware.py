"""ASGI middleware around an App: the entries ``App(middleware=...)`` takes, and
finding the App inside an app someone wrapped by hand (``twofold serve``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeAlias

from twofold.core.asgi import ASGIApp
from twofold.core.definition import DefinitionError


class Middleware:
    """``Middleware(cls, *args, **options)``: ``cls(app, *args, **options)`` around the App.

    The same shape as ``starlette.middleware.Middleware``, which an App takes
    as well, so an entry copied from Starlette's or FastAPI's docs works
    unchanged; this one needs no Starlette installed.
    """

    __slots__ = ("args", "cls", "kwargs")

    def __init__(self, cls: Callable[..., ASGIApp], *args: Any, **kwargs: Any) -> None:
        self.cls = cls
        self.args = args
        self.kwargs = kwargs

    def __iter__(self) -> Iterator[Any]:
        return iter((self.cls, self.args, self.kwargs))

    def __repr__(self) -> str:
        shown = [getattr(self.cls, "__name__", repr(self.cls))]
        shown += [repr(a) for a in self.args]
        shown += [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Middleware({', '.join(shown)})"


class MiddlewareSpec(Protocol):
    """Anything shaped like :class:`Middleware` (Starlette's is)."""

    @property
    def cls(self) -> Any: ...

    @property
    def args(self) -> Any: ...

    @property
    def kwargs(self) -> Any: ...


MiddlewareEntry: TypeAlias = MiddlewareSpec | Callable[[ASGIApp], ASGIApp]


def wrap(app: ASGIApp, entries: Sequence[MiddlewareEntry]) -> ASGIApp:
    """``app`` inside ``entries``, the first one outermost (as Starlette and interceptors).

    An entry is a :class:`Middleware` (or Starlette's) or any callable that
    takes the ASGI app and returns one: a middleware class used with its
    defaults, ``functools.partial(cls, **options)``, a function. Anything
    else is refused when the App is built, not at the first request.
    """
    for entry in reversed(entries):
        if _is_spec(entry):
            spec: Any = entry
            wrapped = spec.cls(app, *spec.args, **spec.kwargs)
        elif callable(entry):
            wrapped = entry(app)
        else:
            raise DefinitionError(
                f"middleware entry {entry!r} is neither Middleware(cls, **options) "
                "nor a callable taking the ASGI app"
            )
        if not callable(wrapped):
            raise DefinitionError(f"middleware {entry!r} returned {wrapped!r}, not an ASGI app")
        app = wrapped
    return app


def _is_spec(entry: object) -> bool:
    return all(hasattr(entry, name) for name in ("cls", "args", "kwargs")) and callable(
        getattr(entry, "cls", None)
    )


# Where ASGI middleware keeps the app it wraps: Starlette's and most others
# (``self.app``), a few private or longer names, functools.wraps' ``__wrapped__``.
_INNER_NAMES = ("app", "_app", "application", "wrapped", "__wrapped__")
_MAX_DEPTH = 32


def find_app(obj: object, kind: type[Any]) -> Any | None:
    """The first ``kind`` instance found going inward from ``obj``, or None.

    Inward means through the attributes middleware keeps its app in and
    through the closure of a middleware written as a function; breadth
    first, so the outermost App wins, and bounded so a cyclic or huge object
    graph ends the search rather than the process.
    """
    seen: set[int] = set()
    level = [obj]
    for _depth in range(_MAX_DEPTH):
        following: list[object] = []
        for item in level:
            if isinstance(item, kind):
                return item
            if id(item) in seen:
                continue
            seen.add(id(item))
            following.extend(_inner(item))
        if not following:
            return None
        level = following
    return None


def _inner(item: object) -> Iterator[object]:
    if isinstance(item, type):  # a class is no wrapper, its attributes are no app
        return
    for name in _INNER_NAMES:
        try:
            inner = getattr(item, name, None)
        except Exception:  # a property that raises: this is no wrapper to look into
            continue
        if inner is not None and callable(inner):
            yield inner
    for cell in getattr(item, "__closure__", None) or ():
        try:
            inner = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if callable(inner):
            yield inner

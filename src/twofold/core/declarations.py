"""Method options set by decorators (``@requires``, ``@public``, ``@timeout``), in any order.

An option decorator may sit under the method decorator or above it. Under
it, the option marks the function and the registration reads the mark;
above it, the function is already a method, and the option is set on that
method. Either way the method ends up with the option, or the definition
is refused with :class:`DefinitionError`, never silently ignored:

- two different values for one option (``@public`` with ``@requires``, two
  ``@timeout``\\ s): which one was meant cannot be told;
- options on a function registered as more than one method: an option
  between two registrations may be meant for one of them only;
- an option or a registration once an App serves the service: the App
  holds its own copy of the method table and would never see it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

# option name (a Method attribute) -> (the decorator that set it, its value)
OPTIONS_ATTRIBUTE = "__twofold_options__"
# The (owner, method) pairs a function was registered as.
METHODS_ATTRIBUTE = "__twofold_methods__"


class DefinitionError(TypeError):
    """A definition that cannot be served; raised at import time, never per request."""


class Owner(Protocol):
    """What registered a method: a :class:`~twofold.core.definition.Service`."""

    @property
    def full_name(self) -> str: ...

    def check_open(self, what: str) -> None:
        """Raise DefinitionError if an App already serves it, saying ``what`` came too late."""
        ...


def where(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def options(fn: Callable[..., Any]) -> Mapping[str, Any]:
    """The options declared on ``fn`` so far, by Method attribute name."""
    found: Mapping[str, tuple[str, Any]] = getattr(fn, OPTIONS_ATTRIBUTE, {})
    return {name: value for name, (_, value) in found.items()}


def registrations(fn: Callable[..., Any]) -> tuple[tuple[Owner, Any], ...]:
    registered: tuple[tuple[Owner, Any], ...] = getattr(fn, METHODS_ATTRIBUTE, ())
    return registered


def declare(fn: Callable[..., Any], option: str, value: Any, decorator: str) -> None:
    """Give ``fn``'s method the ``option``, whether it is registered yet or not.

    The marks are replaced, never changed in place, so that a wrapper made with
    ``functools.wraps`` (which copies the wrapped function's ``__dict__``) keeps
    a snapshot rather than sharing later changes.
    """
    declared: dict[str, tuple[str, Any]] = dict(getattr(fn, OPTIONS_ATTRIBUTE, {}))
    previous = declared.get(option)
    if previous is not None and previous[1] != value:
        raise DefinitionError(
            f"{where(fn)}: {previous[0]} and {decorator} both set its {option}: keep one"
        )
    registered = registrations(fn)
    if len(registered) > 1:
        raise _ambiguous(fn, registered)
    for owner, method in registered:
        owner.check_open(f"{decorator} on {where(fn)}")
        setattr(method, option, value)
    declared[option] = (decorator, value)
    setattr(fn, OPTIONS_ATTRIBUTE, declared)


def register(fn: Callable[..., Any], owner: Owner, method: Any) -> None:
    """Record that ``fn`` became ``method``, so that an option applied later reaches it."""
    registered = (*registrations(fn), (owner, method))
    if len(registered) > 1 and getattr(fn, OPTIONS_ATTRIBUTE, None):
        raise _ambiguous(fn, registered)
    setattr(fn, METHODS_ATTRIBUTE, registered)


def _ambiguous(fn: Callable[..., Any], registered: tuple[tuple[Owner, Any], ...]) -> Exception:
    names = ", ".join(method.full_name for _, method in registered)
    return DefinitionError(
        f"{where(fn)} is registered as {names} and has method options: which "
        "registration an option belongs to depends on decorator order; register "
        "one function per method (they may call a shared one)"
    )

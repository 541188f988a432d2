"""Dependencies: what a handler is given by type, opened per call or for the App's life.

A handler parameter annotated ``Provided[T]`` is not part of the method's
message; the App gives it the value of the :class:`Provide` declared for
``T``. A call-scoped provider runs inside the call (after the interceptors,
within its deadline) and is closed when the call ends, a stream when its
last message is sent; an app-scoped one is opened when the App starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

from twofold.core.code import Code
from twofold.core.context import Context
from twofold.core.declarations import DefinitionError
from twofold.core.errors import Error
from twofold.core.method import Handler, Method, StreamKind


class _Marker:
    def __repr__(self) -> str:
        return "PROVIDED"


PROVIDED = _Marker()
"""The metadata that marks ``Annotated[T, PROVIDED]``: a parameter the App provides."""

T = TypeVar("T")
Provided: TypeAlias = Annotated[T, PROVIDED]
"""``db: Provided[Database]``: the App gives the handler a ``Database`` (see :class:`Provide`)."""

Scope = Literal["call", "app"]

# What an opened provider leaves to close: an async generator, or an async
# context manager.
_Exit = Any


def provided_type(annotation: Any) -> Any | None:
    """``T`` for ``Provided[T]`` (``Annotated[T, ..., PROVIDED]``), else None."""
    if typing.get_origin(annotation) is Annotated and any(
        m is PROVIDED for m in annotation.__metadata__
    ):
        return annotation.__origin__
    return None


def _name(tp: Any) -> str:
    return getattr(tp, "__qualname__", None) or repr(tp)


@dataclasses.dataclass(frozen=True, slots=True)
class Provide:
    """How the App makes a ``T`` for the handlers that take ``Provided[T]``.

    ``provider`` is one of:

    - an async generator function that yields the value once: the code after
      its ``yield`` runs when the call ends, and an error of the call is
      raised at the ``yield`` (so ``try``/``except`` can roll back);
    - a callable returning an async context manager (``async_sessionmaker``,
      a class with ``__aenter__``): the value is what it enters, and it is
      exited when the call ends;
    - an async or plain function returning the value (nothing to close).

    Its parameters are provided too, by their types: a :class:`~twofold.Context`
    parameter receives the call's context, any other type the value of that
    type's own ``Provide``. ``scope="call"`` (the default) runs it for every
    call that needs it; ``scope="app"`` opens it once, when the App starts
    (its lifespan), and closes it when the App stops.
    """

    type: Any
    provider: Callable[..., Any]
    scope: Scope = "call"

    def __post_init__(self) -> None:
        if self.scope not in ("call", "app"):
            raise DefinitionError(
                f"Provide({_name(self.type)}, ...): scope={self.scope!r} — use 'call' or 'app'"
            )
        if not callable(self.provider):
            raise DefinitionError(
                f"Provide({_name(self.type)}, ...): the provider {self.provider!r} is not "
                "callable — pass a function (write lambda: value for a constant)"
            )

    def needs(self) -> tuple[Any, ...]:
        """The types of the provider's required parameters, in order."""
        fn = self.provider
        where = f"Provide({_name(self.type)}, {getattr(fn, '__qualname__', repr(fn))})"
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError):
            return ()
        try:
            # A class's parameters are its __init__'s (its own hints are its attributes').
            hinted = fn
            if isinstance(fn, type):
                hinted = next(vars(c)["__init__"] for c in fn.__mro__ if "__init__" in vars(c))
            hints = typing.get_type_hints(hinted, include_extras=True)
        except Exception:
            hints = {}
        needs = []
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.default is not param.empty:
                continue
            hint = hints.get(param.name)
            if hint is None:
                raise DefinitionError(
                    f"{where}: parameter {param.name!r} has no type — annotate it with what it "
                    "needs (Context, or a type another Provide gives)"
                )
            if param.kind is param.KEYWORD_ONLY:
                raise DefinitionError(
                    f"{where}: parameter {param.name!r} is keyword-only — make it positional"
                )
            needs.append(provided_type(hint) or hint)
        return tuple(needs)


class _Step:
    """One call-scoped provider of a method: where its arguments come from, its slot."""

    __slots__ = ("args", "provider", "slot")

    def __init__(self, provide: Provide, args: tuple[int, ...], slot: int) -> None:
        self.provider = provide.provider
        # Indices into the call's values; CONTEXT stands for the call's context.
        self.args = args
        self.slot = slot


CONTEXT = -1


class Dependencies:
    """The providers of one App, its app-scoped values, and its overrides.

    ``bind`` wraps a method's handler so that each call opens what it needs;
    ``open_app`` (the App's lifespan) opens the app-scoped ones.
    """

    def __init__(self, provides: Sequence[Provide]) -> None:
        self.declared: dict[Any, Provide] = {}
        for provide in provides:
            if not isinstance(provide, Provide):
                raise DefinitionError(
                    f"dependencies take Provide(...) entries, not {type(provide).__name__}"
                )
            if provide.type in self.declared:
                raise DefinitionError(
                    f"{_name(provide.type)} is provided twice — keep one Provide for each type"
                )
            self.declared[provide.type] = provide
        self.overrides: dict[Any, Provide] = {}
        # The app-scoped values while the App runs (type -> value).
        self.values: dict[Any, Any] = {}
        self.running = False
        # Givens beside the providers for app-scoped ones (the App itself).
        self.givens: dict[Any, Any] = {}

    def current(self, tp: Any) -> Provide | None:
        return self.overrides.get(tp) or self.declared.get(tp)

    # -- checking ---------------------------------------------------------------------

    def check(self, methods: Sequence[Method]) -> None:
        """Refuse, at App build, a dependency nobody provides or that cannot be opened."""
        for tp in self.declared:
            self._order([tp], f"Provide({_name(tp)}, ...)")
        for method in methods:
            if method.dependencies:
                self._order(method.dependencies, method.full_name)

    def _order(self, wanted: Sequence[Any], where: str) -> list[Provide]:
        """The providers ``wanted`` needs, each after the ones it takes; refuse what fails."""
        order: list[Provide] = []
        seen: set[Any] = set()

        def visit(tp: Any, path: tuple[Any, ...], parent: Provide | None) -> None:
            if tp is Context:
                if parent is None:
                    return
                if parent.scope == "app":
                    raise DefinitionError(
                        f"{where}: the app-scoped {_name(parent.type)} takes a Context — "
                        "only a call-scoped provider has a call (make it scope='call')"
                    )
                return
            if tp in self.givens:
                return
            if tp in path:
                cycle = " -> ".join(_name(t) for t in (*path[path.index(tp) :], tp))
                raise DefinitionError(f"{where}: the providers need each other ({cycle})")
            provide = self.current(tp)
            if provide is None:
                taker = f"the provider of {_name(parent.type)}" if parent else where
                raise DefinitionError(
                    f"{where}: {taker} takes Provided[{_name(tp)}], which nothing provides — "
                    f"add Provide({_name(tp)}, ...) to the App's dependencies"
                )
            if parent is not None and parent.scope == "app" and provide.scope == "call":
                raise DefinitionError(
                    f"{where}: the app-scoped {_name(parent.type)} takes the call-scoped "
                    f"{_name(tp)} — an app-scoped provider can take only app-scoped ones"
                )
            if tp in seen:
                return
            for need in provide.needs():
                visit(need, (*path, tp), provide)
            seen.add(tp)
            order.append(provide)

        for tp in wanted:
            visit(tp, (), None)
        return order

    # -- per call ---------------------------------------------------------------------

    def bind(self, method: Method) -> Handler:
        """``method.handler`` with its ``Provided`` parameters opened around each call."""
        if not method.dependencies:
            return method.handler
        order = self._order(method.dependencies, method.full_name)
        steps: list[_Step] = []
        slots: dict[Any, int] = {}
        # Read from the App's values at each call: app-scoped ones and givens.
        app_scoped: list[tuple[int, Any]] = []

        def slot_of(tp: Any) -> int:
            if tp is Context:
                return CONTEXT
            if tp not in slots:  # a given: no provider in the order
                slots[tp] = len(slots)
                app_scoped.append((slots[tp], tp))
            return slots[tp]

        for provide in order:
            if provide.scope == "app":
                slot_of(provide.type)
                continue
            args = tuple(slot_of(need) for need in provide.needs())
            slots[provide.type] = len(slots)
            steps.append(_Step(provide, args, slots[provide.type]))
        wanted = tuple(slot_of(tp) for tp in method.dependencies)
        streams = method.kind in (StreamKind.SERVER, StreamKind.BIDI)
        return _binder(self, method.handler, app_scoped, steps, wanted, streams)

    # -- the App's life ---------------------------------------------------------------

    def app_scoped(self) -> list[Provide]:
        """The app-scoped providers in effect, each after the ones it takes."""
        types = {**self.declared, **self.overrides}
        scoped = [tp for tp in types if (p := self.current(tp)) and p.scope == "app"]
        return self._order(scoped, "the App's start")

    def give(self, tp: Any, value: Any) -> None:
        """Make ``value`` the ``tp`` of every provider that takes one (the App itself)."""
        self.givens[tp] = self.values[tp] = value

    async def open_app(self) -> list[_Exit]:
        """Open every app-scoped provider, in dependency order; what to close, in order."""
        exits: list[_Exit] = []
        try:
            for provide in self.app_scoped():
                args = [self.values[need] for need in provide.needs()]
                self.values[provide.type] = await _settle(provide.provider(*args), exits)
        except BaseException as exc:
            self._forget()
            await close(exits, exc)
            raise
        self.running = True
        return exits

    async def close_app(self, exits: list[_Exit]) -> None:
        self.running = False
        self._forget()
        await close(exits, None)

    def _forget(self) -> None:
        self.values.clear()
        self.values.update(self.givens)

    @contextlib.contextmanager
    def override(self, provides: Sequence[Provide]) -> Iterator[None]:
        """Put ``provides`` in place of the declared ones until the block ends (App.override)."""
        for provide in provides:
            if not isinstance(provide, Provide):
                kind = type(provide).__name__
                raise TypeError(f"override takes Provide(...) entries, not {kind}")
            before = self.current(provide.type)
            if self.running and (provide.scope == "app" or (before and before.scope == "app")):
                raise RuntimeError(
                    f"{_name(provide.type)} is app-scoped: override it before the App starts "
                    "(enter the override, then the test client)"
                )
        saved = dict(self.overrides)
        self.overrides.update({p.type: p for p in provides})
        try:
            yield
        finally:
            self.overrides = saved


def _binder(
    deps: Dependencies,
    handler: Handler,
    app_scoped: list[tuple[int, Any]],
    steps: list[_Step],
    wanted: tuple[int, ...],
    streams: bool,
) -> Handler:
    """Generate ``async (request, ctx)`` opening the steps in order, then calling ``handler``.

    Generated source, as the definition layer's adapter is, because it runs
    on every call: unrolled, a provider that opens nothing costs a call and
    a type check, not a loop, a list and a coroutine per dependency.
    """
    namespace: dict[str, Any] = {
        "handler": handler,
        "values": deps.values,
        "missing": _missing,
        "close": close,
        "settle": _settle,
        "holding": _holding,
        "twice": _twice,
        "AGEN": types.AsyncGeneratorType,
        "PLAIN": _PLAIN,
        "BaseException": BaseException,
        "KeyError": KeyError,
    }
    lines = ["    exits = []", "    try:"]

    def arg(i: int) -> str:
        return "ctx" if i == CONTEXT else f"v{i}"

    for slot, tp in app_scoped:
        namespace[f"T{slot}"] = tp
        lines += [
            "        try:",
            f"            v{slot} = values[T{slot}]",
            "        except KeyError:",
            f"            raise missing(T{slot}) from None",
        ]
    for step in steps:
        namespace[f"P{step.slot}"] = step.provider
        made = f"P{step.slot}({', '.join(arg(i) for i in step.args)})"
        v = f"v{step.slot}"
        if inspect.isasyncgenfunction(step.provider):
            lines += [
                f"        {v} = {made}",
                f"        exits.append({v})",
                f"        {v} = await {v}.__anext__()",
            ]
        elif inspect.iscoroutinefunction(step.provider):
            lines.append(f"        {v} = await {made}")
        else:
            lines += [
                f"        {v} = {made}",
                f"        if type({v}) not in PLAIN:",
                f"            {v} = await settle({v}, exits)",
            ]
    call = f"await handler(request, ctx, {', '.join(arg(i) for i in wanted)})"
    if streams:
        lines += [
            f"        outputs = {call}",
            "    except BaseException as exc:",
            "        if exits:",
            "            await close(exits, exc)",
            "        raise",
            "    return holding(outputs, exits) if exits else outputs",
        ]
    else:
        lines += [
            f"        result = {call}",
            "    except BaseException as exc:",
            "        if exits:",
            "            await close(exits, exc)",
            "        raise",
            "    if exits:",
            # One generator (a session, say): closed here, one coroutine fewer.
            "        if len(exits) == 1 and type(exits[0]) is AGEN:",
            "            try:",
            "                await exits[0].__anext__()",
            "            except StopAsyncIteration:",
            "                return result",
            "            await twice(exits.pop())",
            "        await close(exits, None)",
            "    return result",
        ]
    exec("async def call(request, ctx):\n" + "\n".join(lines) + "\n", namespace)
    bound: Handler = namespace["call"]
    bound.__qualname__ = f"provided<{getattr(handler, '__qualname__', 'handler')}>"
    return bound


def _missing(tp: Any) -> Error:
    return Error(
        Code.UNAVAILABLE,
        f"{_name(tp)} is opened when the App starts, and it has not (its lifespan did not run)",
    )


# The types a plain provider returned that were values, neither awaitable nor
# to be entered: the next value of one of them is taken as it is at once.
_PLAIN: set[type] = set()


async def _settle(made: Any, exits: list[_Exit]) -> Any:
    """The value of what a provider returned: entered, awaited, or as it is."""
    if inspect.isasyncgen(made):
        try:
            value = await made.__anext__()
        except StopAsyncIteration:
            name = made.ag_code.co_qualname
            raise RuntimeError(f"the provider {name} returned without yielding a value") from None
        exits.append(made)
        return value
    if hasattr(made, "__aenter__") and hasattr(made, "__aexit__"):
        value = await made.__aenter__()
        exits.append(made)
        return value
    if inspect.isawaitable(made):
        return await made
    _PLAIN.add(type(made))
    return made


async def close(exits: list[_Exit], error: BaseException | None) -> None:
    """Close ``exits`` last first, each told of ``error``; raise what the last one leaves.

    As ``contextlib`` does, an exception a provider raises while closing
    takes the place of the call's (a commit that fails is the call's error),
    but unlike it a provider cannot swallow the call's error: the call has
    no answer to give.
    """
    if isinstance(error, StopAsyncIteration):
        # From an async generator provider's first step: it never yielded.
        error = RuntimeError("a provider returned without yielding a value")
    while exits:
        made = exits.pop()
        try:
            if inspect.isasyncgen(made):
                await _close_generator(made, error)
            else:
                if error is None:
                    await made.__aexit__(None, None, None)
                else:
                    await made.__aexit__(type(error), error, error.__traceback__)
        except BaseException as exc:
            if exc is not error:
                error = exc
    if error is not None:
        raise error


async def _twice(gen: Any) -> None:
    """Refuse a provider that yielded a second value when told the call was over."""
    await gen.aclose()
    raise RuntimeError(f"the provider {gen.ag_code.co_qualname} yielded twice")


async def _close_generator(gen: Any, error: BaseException | None) -> None:
    if error is None:
        try:
            await gen.__anext__()
        except StopAsyncIteration:
            return
        await _twice(gen)
    try:
        await gen.athrow(error)
    except StopAsyncIteration:
        return  # it handled the error; the call's error stands all the same
    except BaseException as exc:
        if exc is error:
            raise
        raise exc from error
    await _twice(gen)


async def _holding(outputs: Any, exits: list[_Exit]) -> Any:
    """The stream ``outputs``, its dependencies held open until it ends, however it ends.

    The handler's generator is closed first, so that its own ``finally``
    still has them.
    """
    error: BaseException | None = None
    try:
        async for output in outputs:
            yield output
    except BaseException as exc:
        error = exc
        raise
    finally:
        try:
            aclose = getattr(outputs, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            await close(exits, error)

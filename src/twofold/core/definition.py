"""The definition layer: services, resources, actions and procedures.

User code declares async functions with typed parameters; this module turns
each one into a :class:`~twofold.core.method.Method`. The request message is built
from the function's parameters (a msgspec Struct named ``<Rpc>Request``), so
``async def get_product(id: int) -> Product`` is the RPC ``GetProduct`` taking
``GetProductRequest{id}``. A function whose first parameter is
positional-only and typed with a Struct or dataclass takes that message as is.
A parameter annotated :class:`~twofold.Context` receives the call
context, and one annotated ``Provided[T]`` a dependency
(:mod:`twofold.core.dependencies`); neither is part of the message.
"""

from __future__ import annotations

import asyncio
import collections.abc
import dataclasses
import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import msgspec

from twofold.core import declarations
from twofold.core.context import Context

# Re-exported: where users and the other layers have always imported it from.
from twofold.core.declarations import DefinitionError as DefinitionError
from twofold.core.dependencies import provided_type
from twofold.core.files import File, is_file
from twofold.core.method import Empty, HttpBinding, Idempotency, Method, StreamKind
from twofold.core.naming import pascal
from twofold.core.naming import singular as make_singular
from twofold.core.policy import Cache, Requirement

F = TypeVar("F", bound=Callable[..., Any])
_EMPTY = Empty()


def is_message_type(tp: Any) -> bool:
    return isinstance(tp, type) and (issubclass(tp, msgspec.Struct) or dataclasses.is_dataclass(tp))


@dataclasses.dataclass(frozen=True, slots=True)
class _Signature:
    request_type: type[Any]
    output_type: type[Any]
    field_names: tuple[str, ...]
    context_param: str | None
    whole_message: bool
    kind: StreamKind = StreamKind.UNARY
    # The parameter that receives the client's stream of messages, if any.
    stream_param: str | None = None
    # The request field each of ``field_names`` is known by on the wire: its
    # own name, except the item of a create/update/replace (see _item_param).
    wire_names: tuple[str, ...] = ()
    # The request field that holds the item, if the method takes one.
    item_field: str | None = None
    # The ``Provided[T]`` parameters: (name, T), which the adapter takes after the context.
    provided: tuple[tuple[str, Any], ...] = ()


_STREAMS = (
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


def _stream_item(annotation: Any) -> Any | None:
    """``T`` for ``AsyncIterator[T]`` (or AsyncIterable / AsyncGenerator), else None."""
    if typing.get_origin(annotation) in _STREAMS:
        args = typing.get_args(annotation)
        return args[0] if args else None
    return None


def _unannotated(tp: Any) -> Any:
    """``T`` for ``Annotated[T, ...]``, else ``tp``."""
    return typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp


def _item_param(
    where: str,
    params: list[inspect.Parameter],
    hints: dict[str, Any],
    item: str,
    explicit: str | None,
) -> str | None:
    """The parameter that receives the item of a create/update/replace.

    It is the one that ``body=`` names, else the one parameter typed with a
    Struct or dataclass, else one named ``item`` (a ``dict`` item). Choosing
    it by type rather than by name is what lets a handler rename it without
    changing any wire: its request field is always the resource's singular
    (AIP-133: ``book`` for books).
    """
    names = [p.name for p in params]
    if explicit is not None:
        if explicit not in names:
            raise DefinitionError(
                f"{where}: body={explicit!r} names no parameter — "
                f"name one of {', '.join(names) or '(none)'}"
            )
        return explicit
    typed = [n for n in names if is_message_type(_unannotated(hints.get(n)))]
    if len(typed) > 1:
        raise DefinitionError(
            f"{where}: parameters {', '.join(typed)} are all messages — "
            "say which one is the item with body='<parameter>'"
        )
    if typed:
        return typed[0]
    return item if item in names else None


def _inspect(
    fn: Callable[..., Any],
    rpc_name: str,
    item: str | None = None,
    item_body: str | None = None,
) -> _Signature:
    """Read a handler's signature: its request message, output and streaming kind.

    An ``async def`` generator streams its outputs (server streaming); a
    parameter typed ``AsyncIterator[T]`` receives the client's stream of
    ``T`` messages (client streaming); both together are bidi. With ``item``
    (a resource's singular), the item parameter (:func:`_item_param`, or the
    one ``item_body`` names) is the request field ``item`` whatever its name.
    """
    where = f"{fn.__module__}.{fn.__qualname__}"
    if inspect.isgeneratorfunction(fn):
        raise DefinitionError(
            f"{where}: a streaming handler must be an async generator — write async def"
        )
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except NameError as exc:
        raise DefinitionError(
            f"{where}: cannot resolve an annotation: {exc} — import the type at module level"
        ) from None
    if "return" not in hints:
        raise DefinitionError(
            f"{where}: the return type is not annotated — add -> Message (-> None for no output)"
        )
    output = hints.pop("return")
    server_streams = inspect.isasyncgenfunction(fn)
    if server_streams:
        output = _stream_item(output)
        if output is None:
            raise DefinitionError(
                f"{where}: an async generator yields no declared type — "
                "annotate it -> AsyncIterator[Message]"
            )
    output_type: type[Any] = Empty if output is None or output is type(None) else output
    if not is_message_type(output_type):
        raise DefinitionError(
            f"{where}: the return type {output_type!r} is not a message — return a msgspec Struct "
            "or dataclass (wrap a scalar in one)"
        )

    params = list(inspect.signature(fn).parameters.values())
    context_param = next((p.name for p in params if hints.get(p.name) is Context), None)
    provided = tuple(
        (p.name, tp) for p in params if (tp := provided_type(hints.get(p.name))) is not None
    )
    for name, _ in provided:
        if params[[p.name for p in params].index(name)].kind is inspect.Parameter.POSITIONAL_ONLY:
            raise DefinitionError(
                f"{where}: the provided parameter {name!r} is positional-only — drop the /"
            )
    not_message = {context_param, *(name for name, _ in provided)}
    others = [p for p in params if p.name not in not_message]
    streamed = [p for p in others if _stream_item(hints.get(p.name)) is not None]
    if streamed:
        item = _stream_item(hints[streamed[0].name])
        if len(others) != 1 or item is None or not is_message_type(item):
            raise DefinitionError(
                f"{where}: a client-streaming handler takes one AsyncIterator[Message] "
                "parameter (and optionally a Context and Provided[...] ones)"
            )
        kind = StreamKind.BIDI if server_streams else StreamKind.CLIENT
        message: type[Any] = item
        return _Signature(
            message,
            output_type,
            (),
            context_param,
            False,
            kind,
            streamed[0].name,
            provided=provided,
        )
    kind = StreamKind.SERVER if server_streams else StreamKind.UNARY

    if (
        others
        and others[0].kind is inspect.Parameter.POSITIONAL_ONLY
        and is_message_type(hints.get(others[0].name))
    ):
        if len(others) > 1:
            raise DefinitionError(
                f"{where}: after the message only a Context or Provided[...] parameters may "
                "follow — make the other parameters fields of the message"
            )
        return _Signature(
            hints[others[0].name], output_type, (), context_param, True, kind, provided=provided
        )

    item_param = None
    if item is not None:
        item_param = _item_param(where, others, hints, item, item_body)
    wire = {p.name: item if p.name == item_param and item else p.name for p in others}
    if item_param is not None and item in [p.name for p in others if p.name != item_param]:
        raise DefinitionError(
            f"{where}: the item {item_param!r} is the request field {item!r}, "
            f"and so is another parameter — rename that parameter"
        )
    fields: list[tuple[Any, ...]] = []
    for p in others:
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise DefinitionError(
                f"{where}: *args and **kwargs cannot become message fields — name each parameter"
            )
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise DefinitionError(
                f"{where}: only a message type may be positional-only — drop the / after {p.name!r}"
            )
        if p.name not in hints:
            raise DefinitionError(
                f"{where}: parameter {p.name!r} has no type — annotate it ({p.name}: int, ...)"
            )
        if p.default is inspect.Parameter.empty:
            fields.append((wire[p.name], hints[p.name]))
        else:
            fields.append((wire[p.name], hints[p.name], p.default))
    request_type = msgspec.defstruct(
        f"{rpc_name}Request",
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        module=fn.__module__,
    )
    names = tuple(p.name for p in others)
    return _Signature(
        request_type,
        output_type,
        names,
        context_param,
        False,
        kind,
        wire_names=tuple(wire[n] for n in names),
        item_field=wire[item_param] if item_param is not None else None,
        provided=provided,
    )


def _adapt(fn: Callable[..., Any], sig: _Signature) -> Callable[[Any, Context], Any]:
    """Build ``async (request, ctx) -> output`` that calls ``fn`` with its own parameters.

    The adapter is generated source rather than a loop over names because it
    runs on every call: ``fn(id=req.id)`` is several times cheaper than
    building a kwargs dict.
    """
    target = fn
    if not inspect.iscoroutinefunction(fn) and not inspect.isasyncgenfunction(fn):
        # A plain function may block (a sync driver, a file): keep it off the loop.
        async def target(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))

    if sig.stream_param:
        args = [f"{sig.stream_param}=req"]
    elif sig.whole_message:
        args = ["req"]
    else:
        args = [f"{n}=req.{w}" for n, w in zip(sig.field_names, sig.wire_names, strict=True)]
    if sig.context_param:
        args.append(f"{sig.context_param}=ctx")
    # The App opens the provided values and passes them after the context
    # (twofold.core.dependencies), in the order of Method.dependencies.
    provided = [f"p{i}" for i in range(len(sig.provided))]
    args += [f"{name}={p}" for (name, _), p in zip(sig.provided, provided, strict=True)]
    call = f"target({', '.join(args)})"
    if sig.kind in (StreamKind.SERVER, StreamKind.BIDI):
        # The call returns the async generator itself, so that interceptors keep
        # one shape: ``await call_next(request, ctx)`` gives them the stream.
        body = f"    return {call}\n"
    elif sig.output_type is Empty:
        body = f"    await {call}\n    return EMPTY\n"
    elif is_file(sig.output_type):
        # A streamed File (File.stream) goes out as it comes on REST alone; the
        # RPC wires carry one message, so its bytes are gathered here, inside
        # the chain and the deadline.
        body = f"    return await gathered(await {call}, ctx)\n"
    else:
        body = f"    return await {call}\n"
    namespace: dict[str, Any] = {"target": target, "EMPTY": _EMPTY, "gathered": _gathered}
    exec(f"async def call({', '.join(['req', 'ctx', *provided])}):\n{body}", namespace)
    adapter: Callable[[Any, Context], Any] = namespace["call"]
    adapter.__qualname__ = f"adapter<{fn.__qualname__}>"
    return adapter


async def _gathered(output: Any, ctx: Context) -> Any:
    if ctx.protocol == "rest" or not isinstance(output, File):
        return output
    return await output.gather()


def _docs(fn: Callable[..., Any]) -> tuple[str, str]:
    doc = inspect.getdoc(fn) or ""
    summary = doc.split("\n\n", 1)[0].replace("\n", " ").strip()
    return summary, doc


class Service:
    """A named group of methods: ``Service("catalog.v1")`` is ``catalog.v1.CatalogService``."""

    def __init__(
        self,
        package: str,
        name: str | None = None,
        *,
        description: str = "",
        proto_lock: str | os.PathLike[str] | None = None,
        security: Requirement | None = None,
    ) -> None:
        if not package or not all(part.isidentifier() for part in package.split(".")):
            raise DefinitionError(
                f"invalid package name {package!r} — use dotted identifiers, like 'library.v1'"
            )
        self.package = package
        self.name = name or f"{pascal(package.split('.')[0])}Service"
        if not self.name.isidentifier():
            raise DefinitionError(
                f"invalid service name {self.name!r} — use an identifier, like 'LibraryService'"
            )
        self.description = description
        # Every method's requirement unless it declares its own (twofold.interceptors.auth).
        self.security = security
        self.methods: dict[str, Method] = {}
        # The first App built from it (twofold.server.app): from then on the service
        # is what that App serves, and a later method or option is refused.
        self.served_by: str | None = None
        self.resources: list[Resource] = []
        # The protobuf lock file (docs/protobuf.md); a relative path is taken
        # beside the module that makes the service, found as namedtuple finds
        # its __module__.
        caller = sys._getframe(1).f_globals.get("__file__")
        lock = Path(proto_lock or "twofold.lock.json")
        self.proto_lock = lock if lock.is_absolute() or not caller else Path(caller).parent / lock

    @property
    def full_name(self) -> str:
        return f"{self.package}.{self.name}"

    def check_open(self, what: str) -> None:
        """Refuse ``what`` (a method, an option) once an App serves the service."""
        if self.served_by is not None:
            raise DefinitionError(
                f"{what} comes after {self.served_by} was built from {self.full_name}: "
                "an App copies its services' methods, so declare every method and "
                "option before building it"
            )

    def freeze(self, by: str) -> None:
        """What an App does when built: no method or option may change from now on."""
        if self.served_by is None:
            self.served_by = by

    def add(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        idempotency: Idempotency = Idempotency.UNKNOWN,
        http: HttpBinding | None = None,
        tags: tuple[str, ...] = (),
        resource: str = "",
        cache: Cache | None = None,
        item: str | None = None,
        item_body: str | None = None,
    ) -> Method:
        """Turn ``fn`` into a method; the building block every decorator uses.

        ``item`` (a resource's singular) makes the method take an item
        (create, update, replace): the item parameter is the request field
        ``item`` and the REST body; without one the body is the whole request.
        """
        self.check_open(f"method {name} ({declarations.where(fn)})")
        if name in self.methods:
            raise DefinitionError(
                f"{self.full_name}: method {name} is defined twice — "
                "rename one function, or give it name=..."
            )
        sig = _inspect(fn, name, item, item_body)
        if item is not None and http is not None:
            http = dataclasses.replace(http, body=sig.item_field or "*")
        if http is not None and sig.kind in (StreamKind.CLIENT, StreamKind.BIDI):
            raise DefinitionError(
                f"{fn.__qualname__}: a client-streaming method has no REST binding — "
                "declare it with @service.procedure, without http="
            )
        if not sig.whole_message:
            # Two services of one module may both have a GetItem: the service in
            # the qualified name keeps their request types (and schemas) apart.
            sig.request_type.__qualname__ = f"{self.name}.{name}Request"
        if http is not None:
            fields = _field_names(sig.request_type)
            for param in http.path_params:
                # A path variable's name is part of the API (the template, the
                # OpenAPI parameter, the RPC field): the handler follows it.
                if param not in fields:
                    raise DefinitionError(
                        f"{fn.__qualname__}: {http.verb} {http.path} needs a parameter "
                        f"{param!r} — name a parameter {param!r} (the path template's "
                        "variable names it, on every wire)"
                    )
            if http.body not in (None, "*") and http.body not in fields:
                raise DefinitionError(
                    f"{fn.__qualname__}: {http.verb} {http.path} takes its body in a "
                    f"parameter {http.body!r} — add one, or bind body='*'"
                )
        summary, description = _docs(fn)
        # Options under the method decorator; one above it finds the method
        # through declarations.register (twofold.core.declarations).
        options = declarations.options(fn)
        method = Method(
            service=self.full_name,
            name=name,
            input_type=sig.request_type,
            output_type=sig.output_type,
            handler=_adapt(fn, sig),
            python_name=fn.__name__,
            kind=sig.kind,
            idempotency=idempotency,
            http=http,
            summary=summary,
            description=description,
            tags=tags,
            resource=resource,
            cache=cache,
            security=options.get("security", self.security),
            timeout=options.get("timeout"),
            lifetime=options.get("lifetime"),
            dependencies=tuple(tp for _, tp in sig.provided),
            resume=options.get("resume"),
            upload_limit=options.get("upload_limit"),
        )
        declarations.register(fn, self, method)
        self.methods[name] = method
        return method

    @overload
    def procedure(self, fn: F, /) -> F: ...

    @overload
    def procedure(
        self,
        *,
        name: str | None = None,
        idempotency: Idempotency = Idempotency.UNKNOWN,
        http: tuple[str, str] | HttpBinding | None = None,
        cache: Cache | None = None,
    ) -> Callable[[F], F]: ...

    def procedure(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        idempotency: Idempotency = Idempotency.UNKNOWN,
        http: tuple[str, str] | HttpBinding | None = None,
        cache: Cache | None = None,
    ) -> F | Callable[[F], F]:
        """An RPC-first method, reachable on every RPC protocol.

        It has a REST route only when ``http`` gives one, e.g.
        ``http=("POST", "/reports:generate")`` (the body is then the whole
        message). ``cache`` says how caches may keep its answers
        (:class:`~twofold.Cache`).
        """

        def register(f: F) -> F:
            binding = http
            if isinstance(binding, tuple):
                verb, path = binding
                body = None if verb.upper() in ("GET", "DELETE") else "*"
                binding = HttpBinding(verb.upper(), path, body=body)
            self.add(
                f,
                name=name or pascal(f.__name__),
                idempotency=idempotency,
                http=binding,
                cache=cache,
            )
            return f

        return register(fn) if fn is not None else register

    def resource(
        self, plural: str, *, singular: str | None = None, key: str = "id", id_field: str = "id"
    ) -> Resource:
        """A top-level collection, ``/products`` with items at ``/products/{key}``."""
        res = Resource(self, plural, singular=singular, key=key, id_field=id_field, parent=None)
        self.resources.append(res)
        return res

    def __repr__(self) -> str:
        return f"Service({self.full_name!r}, methods={list(self.methods)})"


def _field_names(tp: type[Any]) -> set[str]:
    info = msgspec.inspect.type_info(tp)
    return {f.name for f in getattr(info, "fields", ())}


class Resource:
    """A collection of items with AIP-style standard methods and custom actions.

    Decorating functions with :meth:`get`, :meth:`list`, :meth:`create`,
    :meth:`update`, :meth:`replace`, :meth:`delete` and :meth:`action` makes
    ``GetProduct``, ``ListProducts``... with their REST bindings (AIP-131..136).
    """

    def __init__(
        self,
        service: Service,
        plural: str,
        *,
        singular: str | None,
        key: str,
        id_field: str,
        parent: Resource | None,
    ) -> None:
        self.service = service
        self.plural = plural
        self.singular = singular or make_singular(plural)
        self.key = key
        self.id_field = id_field
        self.parent = parent
        prefix = parent.item_path_as_parent if parent else ""
        self.collection_path = f"{prefix}/{plural}"
        self.item_path = f"{self.collection_path}/{{{key}}}"

    @property
    def item_path_as_parent(self) -> str:
        # As a parent, "{id}" would clash with the child's own key, so the
        # variable is named after the resource: /users/{user_id}/orders/...
        var = f"{self.singular}_id" if self.key == "id" else self.key
        return f"{self.collection_path}/{{{var}}}"

    def resource(
        self,
        plural: str,
        *,
        singular: str | None = None,
        key: str | None = None,
        id_field: str = "id",
    ) -> Resource:
        """A nested collection: ``users.resource("orders")`` is ``/users/{user_id}/orders``."""
        child_singular = singular or make_singular(plural)
        res = Resource(
            self.service,
            plural,
            singular=child_singular,
            key=key or f"{child_singular}_id",
            id_field=id_field,
            parent=self,
        )
        self.service.resources.append(res)
        return res

    @property
    def _name(self) -> str:
        return pascal(self.singular)

    def _register(
        self,
        fn: Callable[..., Any],
        name: str,
        verb: str,
        path: str,
        *,
        idempotency: Idempotency,
        body: str | None,
        status: int = 200,
        location: str | None = None,
        cache: Cache | None = None,
        item_body: str | None = None,
    ) -> None:
        # Create/update/replace take the item in a field named after the
        # resource (AIP-133): "product" for products, whatever the handler
        # calls its parameter; without an item the body is the whole request.
        item = self.singular if body == "item" else None
        binding = HttpBinding(
            verb, path, body=body, status=status, location=location, location_field=self.id_field
        )
        self.service.add(
            fn,
            name=name,
            idempotency=idempotency,
            http=binding,
            tags=(self.plural,),
            resource=self.collection_path,
            cache=cache,
            item=item,
            item_body=item_body,
        )

    @overload
    def get(self, fn: F, /) -> F: ...

    @overload
    def get(self, *, cache: Cache | None = None) -> Callable[[F], F]: ...

    def get(self, fn: F | None = None, *, cache: Cache | None = None) -> F | Callable[[F], F]:
        """The standard Get; ``@products.get(cache=Cache(max_age=60))`` lets caches keep it."""

        def register(f: F) -> F:
            self._register(
                f,
                f"Get{self._name}",
                "GET",
                self.item_path,
                idempotency=Idempotency.NO_SIDE_EFFECTS,
                body=None,
                cache=cache,
            )
            return f

        return register(fn) if fn is not None else register

    @overload
    def list(self, fn: F, /) -> F: ...

    @overload
    def list(self, *, cache: Cache | None = None) -> Callable[[F], F]: ...

    def list(self, fn: F | None = None, *, cache: Cache | None = None) -> F | Callable[[F], F]:
        """The standard List; ``cache`` as for :meth:`get`."""

        def register(f: F) -> F:
            self._register(
                f,
                f"List{pascal(self.plural)}",
                "GET",
                self.collection_path,
                idempotency=Idempotency.NO_SIDE_EFFECTS,
                body=None,
                cache=cache,
            )
            return f

        return register(fn) if fn is not None else register

    def _item_method(
        self,
        fn: F | None,
        body: str | None,
        name: str,
        verb: str,
        path: str,
        idempotency: Idempotency,
        **extra: Any,
    ) -> F | Callable[[F], F]:
        def register(f: F) -> F:
            self._register(
                f, name, verb, path, idempotency=idempotency, body="item", item_body=body, **extra
            )
            return f

        return register(fn) if fn is not None else register

    @overload
    def create(self, fn: F, /) -> F: ...

    @overload
    def create(self, *, body: str | None = None) -> Callable[[F], F]: ...

    def create(self, fn: F | None = None, *, body: str | None = None) -> F | Callable[[F], F]:
        """The standard Create (POST), answering 201 with a ``Location``.

        The item is the one Struct or dataclass parameter (``body=`` names
        another); on every wire it is the field named after the resource.
        """
        return self._item_method(
            fn,
            body,
            f"Create{self._name}",
            "POST",
            self.collection_path,
            Idempotency.UNKNOWN,
            status=201,
            location=self.item_path,
        )

    @overload
    def update(self, fn: F, /) -> F: ...

    @overload
    def update(self, *, body: str | None = None) -> Callable[[F], F]: ...

    def update(self, fn: F | None = None, *, body: str | None = None) -> F | Callable[[F], F]:
        """A partial update (PATCH): fields left out of the body keep their value."""
        return self._item_method(
            fn, body, f"Update{self._name}", "PATCH", self.item_path, Idempotency.UNKNOWN
        )

    @overload
    def replace(self, fn: F, /) -> F: ...

    @overload
    def replace(self, *, body: str | None = None) -> Callable[[F], F]: ...

    def replace(self, fn: F | None = None, *, body: str | None = None) -> F | Callable[[F], F]:
        """The standard full replace (PUT); the item as for :meth:`create`."""
        return self._item_method(
            fn, body, f"Replace{self._name}", "PUT", self.item_path, Idempotency.IDEMPOTENT
        )

    def delete(self, fn: F) -> F:
        self._register(
            fn,
            f"Delete{self._name}",
            "DELETE",
            self.item_path,
            idempotency=Idempotency.IDEMPOTENT,
            body=None,
            status=204,
        )
        return fn

    def action(
        self,
        verb: str,
        *,
        collection: bool = False,
        idempotency: Idempotency = Idempotency.UNKNOWN,
    ) -> Callable[[F], F]:
        """A custom method: ``POST /orders/{order_id}:cancel`` as ``CancelOrder``.

        With ``collection=True`` it applies to the collection
        (``POST /products:import`` as ``ImportProducts``).
        """

        def register(fn: F) -> F:
            if collection:
                name, path = f"{pascal(verb)}{pascal(self.plural)}", self.collection_path
            else:
                name, path = f"{pascal(verb)}{self._name}", self.item_path
            self._register(fn, name, "POST", f"{path}:{verb}", idempotency=idempotency, body="*")
            return fn

        return register

    def __repr__(self) -> str:
        return f"Resource({self.collection_path!r})"

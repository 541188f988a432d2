"""The REST shape of a method: its route, and how its request is built from an HTTP request.

One :class:`Operation` per bound method says which request fields come
from the path, which from the query and which from the body (google.api.http
rules), which headers fill fields (``If-Match``, ``If-Unmodified-Since``,
``Idempotency-Key``) and how a success is answered. REST serves it, SSE
serves a stream on it, OpenAPI documents it: all three read it from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element

import msgspec

from twofold.core import decimals, messages, numbers
from twofold.core.code import Code
from twofold.core.errors import Error, validation_error
from twofold.core.files import File, Upload, is_file, is_upload
from twofold.core.method import Method
from twofold.core.policy import KEY_FIELD
from twofold.http import caching, xmlmessage
from twofold.http.routing import Template

# The list response field whose value the Link: rel="next" header carries (AIP-158).
NEXT_PAGE_TOKEN = "next_page_token"

# The write fields REST fills from headers (If-Match, If-Unmodified-Since, Idempotency-Key).
_FROM_HEADERS = frozenset({caching.ETAG_FIELD, caching.UNMODIFIED_SINCE_FIELD, KEY_FIELD})

# Builds the request message from (path and query values, raw body).
Decode = Callable[[dict[str, Any], bytes], Any]
# The same from an XML body's root element (twofold.http.xmlmessage).
DecodeXml = Callable[[dict[str, Any], Element], Any]


@dataclass(slots=True)
class Operation:
    """One verb on one route: the method it calls and how to build its request."""

    method: Method
    template: Template
    status: int
    query_fields: dict[str, bool]  # name -> repeated
    body: str | None
    decode: Decode
    location: Template | None
    # "/products/" when the new item's id is the location's only variable, so
    # that building it is one concatenation; else None.
    location_prefix: str | None
    location_field: str
    # Caching (twofold.http.caching), worked out once: a read answers with an ETag
    # and honours If-None-Match; a write whose request has an ``etag`` field
    # takes If-Match into it.
    read: bool
    cache_control: tuple[bytes, bytes]
    vary: tuple[bytes, bytes]
    if_match: bool
    # A write whose request has an unmodified_since field takes If-Unmodified-Since.
    unmodified: bool
    # A POST whose request has an idempotency_key field takes Idempotency-Key into it.
    keyed: bool
    # The output has next_page_token: a list, answered with a Link header.
    pages: bool
    # The output declares updated_at: its answers may carry Last-Modified.
    modified: bool
    # The body field when it is a File (twofold.http.files): an upload, taken raw
    # or from multipart/form-data, and how to build the request around it.
    upload: str | None = None
    decode_upload: Callable[[dict[str, Any], File | Upload], Any] | None = None
    # The upload field is an Upload: streamed to the handler, not read whole.
    streamed: bool = False
    # The output is a File: a download, answered with its bytes, not JSON.
    download: bool = False
    # The request from an XML body, for an operation with a body.
    decode_xml: DecodeXml | None = None

    @classmethod
    def build(cls, method: Method) -> Operation:
        binding = method.http
        assert binding is not None
        template = Template.parse(binding.path)
        all_fields = {f.name: f for f in messages.fields(method.input_type)}
        path_fields = set(template.variables)
        body = binding.body
        if body == "*":
            query = set()
        else:
            query = set(all_fields) - path_fields - ({body} if body else set())
        read = binding.verb == "GET"
        upload = None
        if body not in (None, "*") and _uploaded(all_fields[body].type):
            upload = body
        elif body == "*" and len(set(all_fields) - path_fields - _FROM_HEADERS) == 1:
            # ``http=("PUT", "/files/{name}")`` on ``(name: str, file: File)``:
            # the body is the whole rest of the message, which is the file
            # (an etag, a date or a key beside it comes from its header).
            (rest,) = set(all_fields) - path_fields - _FROM_HEADERS
            upload = rest if _uploaded(all_fields[rest].type) else None
        if_match = not read and caching.ETAG_FIELD in all_fields
        unmodified = not read and caching.UNMODIFIED_SINCE_FIELD in all_fields
        keyed = binding.verb == "POST" and KEY_FIELD in all_fields
        # The conditions and key of a write come from headers, not from the URL.
        headers = {caching.ETAG_FIELD, caching.UNMODIFIED_SINCE_FIELD, KEY_FIELD}
        url_query = query - headers if not read else query
        output_fields = {f.name for f in messages.fields(method.output_type)}
        location = Template.parse(binding.location) if binding.location else None
        prefix = None
        if (
            location is not None
            and location.verb is None
            and len(location.variables) == 1
            and location.segments[-1].startswith("{")
        ):
            prefix = "/" + "".join(s + "/" for s in location.segments[:-1])
        return cls(
            method=method,
            template=template,
            status=204 if method.returns_empty else binding.status,
            query_fields={n: messages.is_repeated(all_fields[n].type) for n in sorted(url_query)},
            body=body,
            decode=_decoder(method, path_fields, query, body),
            location=location,
            location_prefix=prefix,
            location_field=binding.location_field,
            read=read,
            cache_control=(b"cache-control", caching.cache_control(method)),
            # Reads differ by Accept too: JSON or XML (twofold.http.negotiation).
            vary=(b"vary", b"Accept, " + caching.vary(method)),
            if_match=if_match,
            unmodified=unmodified,
            keyed=keyed,
            pages=read and NEXT_PAGE_TOKEN in output_fields,
            modified=caching.MODIFIED_FIELD in output_fields,
            upload=upload,
            decode_upload=None if upload is None else _upload_decoder(method, path_fields, upload),
            download=is_file(method.output_type),
            decode_xml=None if body is None else _xml_decoder(method, path_fields, body),
            streamed=upload is not None and is_upload(all_fields[upload].type),
        )


def _uploaded(tp: Any) -> bool:
    """Whether a body field is a file REST takes raw or from a form."""
    return is_file(tp) or is_upload(tp)


def _decoder(method: Method, path: set[str], query: set[str], body: str | None) -> Decode:
    """Pick the cheapest way to build this operation's request message."""
    tp = method.input_type
    module = tp.__module__
    if body is None:
        # Everything is text from the URL: one lenient conversion.
        def from_params(params: dict[str, Any], _: bytes) -> Any:
            return msgspec.convert(params, tp, strict=False)

        return from_params if decimals.checker(tp) is None else _checked(from_params, tp)

    params_tp = messages.subset(f"{method.name}Params", tp, path | query, module)
    if decimals.checker(params_tp) is not None:
        return _checked(_decoder_with_body(method, path, body, params_tp), params_tp)
    return _decoder_with_body(method, path, body, params_tp)


def _upload_decoder(
    method: Method, path: set[str], field: str
) -> Callable[[dict[str, Any], File | Upload], Any]:
    """The request built from path and query values and an uploaded file (its body field)."""
    tp = method.input_type
    others = {f.name for f in messages.fields(tp)} - {field}
    params_tp = messages.subset(f"{method.name}UploadParams", tp, others, tp.__module__)
    names = tuple(f.name for f in messages.fields(params_tp))
    check = decimals.checker(params_tp)

    def with_file(params: dict[str, Any], file: File | Upload) -> Any:
        p = msgspec.convert(params, params_tp, strict=False)
        if check is not None:
            check(params)
        kwargs = {n: getattr(p, n) for n in names}
        kwargs[field] = file
        return tp(**kwargs)

    return with_file


def _checked(decode: Decode, params_tp: Any) -> Decode:
    """``decode``, with the Decimals among path and query values held to their
    rule (:mod:`twofold.core.decimals`): lenient conversion reads "1e2" too."""
    check = decimals.checker(params_tp)
    assert check is not None

    def checked(params: dict[str, Any], raw: bytes) -> Any:
        request = decode(params, raw)
        check(params)
        return request

    return checked


def _decoder_with_body(method: Method, path: set[str], body: str, params_tp: Any) -> Decode:
    tp = method.input_type
    module = tp.__module__
    param_names = tuple(f.name for f in messages.fields(params_tp))

    if body == "*":
        if not path:
            body_decoder = numbers.Decoder(tp)

            def whole_body(params: dict[str, Any], raw: bytes) -> Any:
                return body_decoder.decode(raw or b"{}")

            return whole_body
        body_tp = messages.subset(
            f"{method.name}Body", tp, {f.name for f in messages.fields(tp)} - path, module
        )
        decoder = numbers.Decoder(body_tp)
        body_names = tuple(f.name for f in messages.fields(body_tp))

        def merged(params: dict[str, Any], raw: bytes) -> Any:
            p = msgspec.convert(params, params_tp, strict=False)
            b = decoder.decode(raw or b"{}")
            kwargs = {n: getattr(p, n) for n in param_names}
            kwargs.update({n: getattr(b, n) for n in body_names})
            return tp(**kwargs)

        return merged

    field = next(f for f in messages.fields(tp) if f.name == body)
    field_decoder = numbers.Decoder(field.type)

    def one_field(params: dict[str, Any], raw: bytes) -> Any:
        # No path or query fields (a top-level create): nothing to convert.
        p = msgspec.convert(params, params_tp, strict=False) if param_names else None
        if not raw:
            if field.required:
                raise Error.invalid(body, "a request body is required")
            value = (
                field.default
                if field.default_factory is msgspec.NODEFAULT
                else (field.default_factory())
            )
        else:
            try:
                value = field_decoder.decode(raw)
            except msgspec.ValidationError as exc:
                raise validation_error(exc, prefix=body) from None
        if p is None:
            return tp(**{body: value})
        kwargs = {n: getattr(p, n) for n in param_names}
        kwargs[body] = value
        return tp(**kwargs)

    return one_field


def _xml_decoder(method: Method, path: set[str], body: str) -> DecodeXml:
    """The request from path and query values and an XML body: the same
    message a JSON body gives, its root element the body's message name
    (the request's, its body field's, or ``{Method}Body`` less path fields)."""
    tp = method.input_type
    module = tp.__module__
    names = {f.name for f in messages.fields(tp)}
    if body == "*":
        params_tp = messages.subset(f"{method.name}Params", tp, path, module)
        # The same body type OpenAPI publishes: the message, or the message less
        # its path fields; its name is the root element.
        body_tp = messages.subset(f"{method.name}Body", tp, names - path, module) if path else tp
        reader = xmlmessage.Reader(body_tp, xmlmessage.root_name(body_tp))
    else:
        params_tp = messages.subset(f"{method.name}Params", tp, names - {body}, module)
        field_tp = next(f for f in messages.fields(tp) if f.name == body).type
        reader = xmlmessage.Reader(field_tp, xmlmessage.root_name(field_tp))
    param_names = tuple(f.name for f in messages.fields(params_tp))
    check = decimals.checker(params_tp)

    def from_xml(params: dict[str, Any], root: Element) -> Any:
        p = msgspec.convert(params, params_tp, strict=False)
        if check is not None:
            check(params)
        try:
            value = reader.read(root)
        except msgspec.ValidationError as exc:
            raise validation_error(exc, prefix="" if body == "*" else body) from None
        kwargs = {n: getattr(p, n) for n in param_names}
        if body == "*":
            kwargs.update({f.name: getattr(value, f.name) for f in messages.fields(reader.type)})
        else:
            kwargs[body] = value
        return tp(**kwargs)

    return from_xml


def shape(template: Template) -> str:
    """The route a template matches, its variables blanked: ``/products/{}``."""
    segs = ["{}" if s.startswith("{") else s for s in template.segments]
    return "/" + "/".join(segs) + (f":{template.verb}" if template.verb else "")


def add_query(params: dict[str, Any], qs: bytes, known: dict[str, bool]) -> None:
    """Known query parameters into ``params``; unknown ones are ignored, as caches
    and browsers add their own (cache-busters, tracking)."""
    try:
        pairs = parse_qsl(qs.decode("latin-1"), keep_blank_values=True, max_num_fields=1000)
    except ValueError:
        raise Error(Code.INVALID_ARGUMENT, "too many query parameters") from None
    for name, value in pairs:
        repeated = known.get(name)
        if repeated is None:
            continue
        if repeated:
            params.setdefault(name, []).append(value)
        elif name in params:
            raise Error.invalid(name, "given more than once")
        else:
            params[name] = value

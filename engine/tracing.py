"""Optional OpenTelemetry tracing, off unless asked for and free when off.

Tracing is on in a process once :func:`setup` found the ``otel`` extra installed and
``OTEL_EXPORTER_OTLP_ENDPOINT`` set (the edges call it: the API factory, the Celery app),
or a test handed it a provider with :func:`use`. Off, :func:`span` returns one shared
no-op context manager and no SQL listener is registered, so the event path pays a
function call per span and nothing per statement.

What a span may carry: names (workflow, trigger, task), ids and counts. Never a case
field's value: case data is confidential, and a trace backend is not a place the access
rules reach. SQL spans carry the statement text, which holds placeholders only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from sqlalchemy import Engine, event

AttributeValue = str | int | float | bool

_NULL: AbstractContextManager[Any] = nullcontext()
# The key under which a statement's span rides on its SQLAlchemy execution context; our
# own, so the upstream instrumentation (which uses ``_otel_span``) can run beside it.
_SPAN_KEY = "_referral_span"


class _State:
    tracer: Any = None
    provider: Any = None
    instrumented_celery = False


_state = _State()


def enabled() -> bool:
    return _state.tracer is not None


def setup(service_name: str, environ: MutableMapping[str, str] | None = None) -> bool:
    """Turn tracing on for this process if the extra is installed and an endpoint is set.

    Idempotent: the first call that turns it on wins (one provider per process, as the
    OpenTelemetry API allows only one global provider). Returns whether tracing is on.
    """
    if enabled():
        return True
    env = os.environ if environ is None else environ
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        return False
    name = env.get("OTEL_SERVICE_NAME") or service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    # The exporter reads the endpoint and headers from the standard OTEL_* variables.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use(provider)
    return True


def use(provider: Any) -> None:
    """Trace with ``provider`` (an SDK ``TracerProvider``) from now on in this process."""
    from opentelemetry import trace

    _state.provider = provider
    _state.tracer = trace.get_tracer("referral-engine", tracer_provider=provider)
    if not event.contains(Engine, "before_cursor_execute", _before_cursor_execute):
        # On the Engine class: every engine, made before or after this call, is traced.
        event.listen(Engine, "before_cursor_execute", _before_cursor_execute)
        event.listen(Engine, "after_cursor_execute", _after_cursor_execute)
        event.listen(Engine, "handle_error", _handle_error)


def stop() -> None:
    """Tracing off again (for tests): listeners removed, the provider flushed."""
    if event.contains(Engine, "before_cursor_execute", _before_cursor_execute):
        event.remove(Engine, "before_cursor_execute", _before_cursor_execute)
        event.remove(Engine, "after_cursor_execute", _after_cursor_execute)
        event.remove(Engine, "handle_error", _handle_error)
    if _state.instrumented_celery:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().uninstrument()
        _state.instrumented_celery = False
    if _state.provider is not None:
        _state.provider.force_flush()
    _state.tracer = None
    _state.provider = None


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> AbstractContextManager[Any]:
    """A span around a block, the current span's child; the shared no-op when off."""
    tracer = _state.tracer
    if tracer is None:
        return _NULL
    return tracer.start_as_current_span(name, attributes=attributes)  # type: ignore[no-any-return]


def client_span(
    name: str,
    attributes: Mapping[str, AttributeValue] | None = None,
    *,
    origin: str | None = None,
) -> AbstractContextManager[Any]:
    """Like :func:`span`, for a call to another system (an outgoing webhook).

    ``origin`` is a stored :func:`traceparent` (the request that started the timer this
    notification comes from): the span links to that trace, as a batch's work links to
    the many requests behind it rather than joining any one of them.
    """
    tracer = _state.tracer
    if tracer is None:
        return _NULL
    from opentelemetry.trace import SpanKind

    return tracer.start_as_current_span(  # type: ignore[no-any-return]
        name, kind=SpanKind.CLIENT, attributes=attributes, links=_links(origin)
    )


def traceparent() -> str | None:
    """The current trace context as a W3C ``traceparent`` value, to store beside a row
    that later work (a timer, an outbox row) picks up; None when off or outside a span."""
    if _state.tracer is None:
        return None
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def _links(origin: str | None) -> list[Any]:
    if not origin:
        return []
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    context = TraceContextTextMapPropagator().extract({"traceparent": origin})
    linked = trace.get_current_span(context).get_span_context()
    return [trace.Link(linked)] if linked.is_valid else []


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (``traceparent``) to outgoing HTTP headers."""
    if _state.tracer is None:
        return
    from opentelemetry import propagate

    propagate.inject(headers)


def set_attribute(key: str, value: AttributeValue) -> None:
    """Set an attribute on the current span (a status code, a count); no-op when off."""
    if _state.tracer is None:
        return
    from opentelemetry import trace

    trace.get_current_span().set_attribute(key, value)


def instrument_fastapi(app: Any) -> None:
    """Server spans for every request of ``app``, when tracing is on."""
    if _state.tracer is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    # The ASGI receive/send spans only repeat the request span, once per body chunk.
    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_state.provider, exclude_spans=["receive", "send"]
    )


def instrument_celery() -> None:
    """Task spans, and trace context carried in each message's headers, when tracing is on."""
    if _state.tracer is None or _state.instrumented_celery:
        return
    from opentelemetry.instrumentation.celery import CeleryInstrumentor

    CeleryInstrumentor().instrument(tracer_provider=_state.provider)
    _state.instrumented_celery = True


def _operation(statement: str) -> str:
    head = statement.lstrip().split(None, 1)
    return head[0].upper() if head else ""


def _before_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    tracer = _state.tracer
    if tracer is None or context is None:
        # No context to carry the span to after_cursor_execute: no span rather than a
        # span that never ends (or an error on the caller's statement).
        return
    operation = _operation(statement)
    span = tracer.start_span(
        f"{operation} {conn.dialect.name}" if operation else conn.dialect.name,
        kind=_client_kind(),
        attributes={
            "db.system.name": conn.dialect.name,
            "db.operation.name": operation,
            # Placeholders only: parameters (case data) are never recorded.
            "db.query.text": statement,
            "db.operation.batch": executemany,
        },
    )
    setattr(context, _SPAN_KEY, span)


def _after_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    span = getattr(context, _SPAN_KEY, None)
    if span is not None:
        setattr(context, _SPAN_KEY, None)
        span.end()


def _handle_error(exception_context: Any) -> None:
    context = exception_context.execution_context
    span = getattr(context, _SPAN_KEY, None)
    if span is None:
        return
    from opentelemetry.trace import Status, StatusCode

    setattr(context, _SPAN_KEY, None)
    # The error's type only: a driver's message may quote the offending value.
    error = type(exception_context.original_exception).__name__
    span.set_attribute("error.type", error)
    span.set_status(Status(StatusCode.ERROR))
    span.end()


def _client_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.CLIENT

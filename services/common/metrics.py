"""Prometheus metrics for every gRPC service: calls and latency per method and status code.

Each service serves /metrics on its own port (`METRICS_PORT`, default gRPC port + 1000) when
the variable `CMS_METRICS` is not "off"; tests leave it off.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

RPCS = Counter("cms_grpc_requests_total", "gRPC calls handled", ["service", "method", "code"])
LATENCY = Histogram("cms_grpc_request_seconds", "gRPC call latency", ["service", "method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, service: str):
        self._service = service

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary
        service = self._service

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            try:
                return await inner(request, context)
            except BaseException:
                code = context.code().name if context.code() else "UNKNOWN"
                raise
            finally:
                RPCS.labels(service, method, code).inc()
                LATENCY.labels(service, method).observe(time.perf_counter() - started)

        return grpc.unary_unary_rpc_method_handler(
            timed, request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

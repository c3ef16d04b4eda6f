"""Shared dependencies of the routers: the process Runtime and its services."""

from __future__ import annotations

from fastapi import Request
from starlette.requests import HTTPConnection

from aift.jobs.service import JobService
from aift.models.registry import ModelRegistry
from aift.runtime import Runtime


def get_runtime(conn: HTTPConnection) -> Runtime:
    return conn.app.state.runtime


def get_jobs(request: Request) -> JobService:
    return get_runtime(request).jobs


def get_models(request: Request) -> ModelRegistry:
    return get_runtime(request).models


def get_serving(request: Request):  # noqa: ANN201 - aift.inference.service.ServingService
    return get_runtime(request).serving

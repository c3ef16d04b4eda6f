"""Shared dependencies of the routers: the process Runtime and its services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from starlette.requests import HTTPConnection

from aift.jobs.service import JobService
from aift.models.registry import ModelRegistry
from aift.runtime import Runtime

if TYPE_CHECKING:
    from aift.inference.service import ServingService


def get_runtime(conn: HTTPConnection) -> Runtime:
    return conn.app.state.runtime


def get_jobs(request: Request) -> JobService:
    return get_runtime(request).jobs


def get_models(request: Request) -> ModelRegistry:
    return get_runtime(request).models


def get_serving(request: Request) -> ServingService:
    return get_runtime(request).serving

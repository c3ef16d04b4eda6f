"""Shared dependencies of the routers: the process Runtime and its services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request
from starlette.requests import HTTPConnection

from aift.auth.accounts import OPEN
from aift.auth.schemas import Principal
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


def get_principal(conn: HTTPConnection) -> Principal:
    """Who the request comes from (set by the authentication middleware)."""
    principal = conn.scope.get("state", {}).get("principal")
    return principal if isinstance(principal, Principal) else OPEN

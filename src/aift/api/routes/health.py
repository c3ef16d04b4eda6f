"""Liveness: answers without auth so load balancers and `make run` can poll it."""

from fastapi import APIRouter

from aift import __version__

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz() -> dict:
    """The server is up and answering."""
    return {"status": "ok", "version": __version__}

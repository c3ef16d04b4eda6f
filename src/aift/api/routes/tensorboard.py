"""TensorBoard behind aift's own sign-in: /tensorboard/… is passed to the TensorBoard
named by AIFT_TENSORBOARD_URL (started with `--path_prefix /tensorboard`, listening on
loopback only), so training logs are as protected as everything else here."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from aift.api.deps import get_runtime
from aift.errors import CapabilityMissing, ServiceUnavailable

router = APIRouter(include_in_schema=False)

PREFIX = "/tensorboard"
# Headers that describe one hop of the connection, never passed on.
HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}
)
# Credentials of aift's own clients stay here: TensorBoard never sees them.
PRIVATE_HEADERS = frozenset({"authorization", "cookie", "x-csrf-token"})
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


def _forwarded(headers: list[tuple[str, str]], dropped: frozenset[str]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in dropped]


@router.api_route(PREFIX, methods=["GET"])
@router.api_route(PREFIX + "/{path:path}", methods=["GET", "POST"])
async def tensorboard(request: Request, path: str = "") -> Response:
    """One request passed to TensorBoard and its answer streamed back."""
    base = get_runtime(request).settings.tensorboard_url
    if not base:
        raise CapabilityMissing(
            "No TensorBoard is configured: start `aift tensorboard --path-prefix /tensorboard` "
            "and set AIFT_TENSORBOARD_URL to its address (the containers do both)."
        )
    client = httpx.AsyncClient(timeout=TIMEOUT)
    url = f"{base.rstrip('/')}{PREFIX}/{path}"
    upstream = client.build_request(
        request.method,
        url,
        params=str(request.query_params),
        headers=_forwarded(list(request.headers.items()), HOP_HEADERS | PRIVATE_HEADERS),
        content=await request.body() if request.method == "POST" else None,
    )
    try:
        answer = await client.send(upstream, stream=True)
    except httpx.HTTPError:
        await client.aclose()
        raise ServiceUnavailable(
            "TensorBoard does not answer at AIFT_TENSORBOARD_URL; is it running?"
        ) from None

    async def close() -> None:
        await answer.aclose()
        await client.aclose()

    return StreamingResponse(
        answer.aiter_raw(),
        status_code=answer.status_code,
        headers=dict(_forwarded(list(answer.headers.items()), HOP_HEADERS)),
        background=BackgroundTask(close),
    )

"""Evidence: photos and clips of an event's result, uploaded and read back."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.datastructures import UploadFile

from actors.client import BrainClient
from api.access import ACTIONS, Principal
from api.deps import Client, Reader, role
from api.errors import ApiError
from api.models import EVIDENCE_TYPES, MAX_UPLOAD_BYTES

router = APIRouter(prefix="/api/v1", tags=["events"])

#: Who may report a result may upload its evidence.
Uploader = Annotated[Principal, Depends(role(ACTIONS["result"][1]))]


async def store_evidence(client: BrainClient, event_id: str, f: UploadFile) -> str:
    """Store one uploaded file as evidence of an event; its evidence id."""
    ctype = (f.content_type or "").split(";")[0]
    if ctype not in EVIDENCE_TYPES:
        raise ApiError(415, "photo", f"content type '{ctype}' not accepted; one of {', '.join(EVIDENCE_TYPES)}")
    data = await f.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ApiError(413, "photo", f"larger than {MAX_UPLOAD_BYTES} bytes")
    if not data:
        raise ApiError(422, "photo", "is empty")
    return str(await client.put_evidence(event_id, ctype, data))


@router.post("/events/{event_id}/evidence", status_code=201)
async def upload_evidence(event_id: str, request: Request, who: Uploader, client: Client) -> dict[str, Any]:
    """Upload a photo or clip (multipart field ``photo``); returns its id for the result."""
    if who.role == "handler":
        ev = await client.event_of(event_id)
        if who.member_id not in (ev["assignee"], *ev["reinforcements"]):
            raise ApiError(403, None, f"event {event_id} is not assigned to you ({who.member_id})")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "body", "send multipart/form-data with a 'photo' file")
    form = await request.form()
    f = form.get("photo")
    if f is None or isinstance(f, str):
        raise ApiError(422, "photo", "a file field named 'photo' is required")
    return {"evidence_id": await store_evidence(client, event_id, f)}


@router.get("/evidence/{evidence_id}")
async def get_evidence(evidence_id: str, who: Reader, client: Client) -> Response:
    """The stored bytes of a piece of evidence."""
    found = await client.evidence(evidence_id)
    if found is None:
        raise ApiError(404, None, f"no evidence '{evidence_id}'")
    return Response(content=found[2], media_type=found[1])

"""Actions on events: one ``POST /api/v1/events/{event_id}/<action>`` per action people take
(:data:`api.access.ACTIONS`), the result with its evidence among them. A handler acts only on
events assigned to them (``reinforce``: also those they reinforce).

(No ``from __future__ import annotations`` here: the action routes are made in a loop, each
with its own role dependency, which FastAPI must see as an object, not a name.)
"""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from actors.brain_api import IdemKey
from actors.client import BrainClient
from api.access import ACTIONS, Principal
from api.deps import Client, Idem, role
from api.errors import ApiError
from api.models import ActionBody
from api.routes.evidence import store_evidence

router = APIRouter(prefix="/api/v1/events", tags=["actions"])


async def act(client: BrainClient, event_id: str, name: str, data: dict[str, Any], who: Principal,
              key: IdemKey | None) -> dict[str, Any]:
    """Action ``name`` (a URL action name) on an event, on behalf of ``who``."""
    if who.role == "handler":
        ev = await client.event_of(event_id)
        me = who.member_id
        mine = ev["assignee"] == me or (name == "reinforce" and me in ev["reinforcements"])
        if not mine:
            raise ApiError(403, None, f"event {event_id} is not assigned to you ({me})")
    return dict(await client.act(event_id, ACTIONS[name][0], data, actor=who.actor, idem=key))


def _action_route(name: str) -> None:
    """``POST /api/v1/events/{event_id}/<name>`` with an optional JSON :class:`ActionBody`."""
    Actor = Annotated[Principal, Depends(role(ACTIONS[name][1]))]

    @router.post(f"/{{event_id}}/{name}", name=f"event_{name}",
                 summary=f"{name.replace('-', ' ').capitalize()} ({ACTIONS[name][0]})")
    async def action(event_id: str, who: Actor, key: Idem, client: Client,
                     body: ActionBody | None = None) -> dict[str, Any]:
        data = body.model_dump(exclude_none=True, exclude_defaults=True) if body else {}
        return await act(client, event_id, name, data, who, key)


for _name in ACTIONS:
    if _name != "result":
        _action_route(_name)

Resolver = Annotated[Principal, Depends(role(ACTIONS["result"][1]))]


@router.post("/{event_id}/result")
async def report_result(event_id: str, request: Request, who: Resolver, key: Idem, client: Client) -> dict[str, Any]:
    """The handler's result (resolve): JSON ``{"result", "evidence": [ids]}``, or a multipart form
    with ``result`` and one or more ``photo`` files stored as evidence first."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        result = form.get("result")
        if not isinstance(result, str) or not result.strip():
            raise ApiError(422, "result", "is required (what was done)")
        ids = []
        for f in form.getlist("photo"):
            if isinstance(f, str):
                raise ApiError(422, "photo", "must be a file")
            ids.append(await store_evidence(client, event_id, f))
        data: dict[str, Any] = {"result": result[:2000], "evidence": ids}
    else:
        raw = await request.body()
        try:
            parsed = json.loads(raw or b"{}")
        except ValueError as exc:
            raise ApiError(400, "body", f"malformed JSON: {exc}") from None
        body = ActionBody.model_validate(parsed) if isinstance(parsed, dict) else None
        if body is None:
            raise ApiError(422, "body", "must be a JSON object")
        data = body.model_dump(exclude_none=True, exclude_defaults=True)
        if not data.get("result"):
            raise ApiError(422, "result", "is required (what was done)")
    return await act(client, event_id, "result", data, who, key)

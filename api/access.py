"""Who may do what: the callers' principals, the role sets of the routes, and the table of
the actions people take on events.

Role names are the brain's (:class:`actors.brain_api.AccessRole`, the roles tokens are stored
with); every set here is built from them. Open311 uses the same sets (:mod:`api.open311`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from actors.brain_api import ROLES, AccessRole
from api.errors import ApiError

_ADMIN, _DISPATCHER, _HANDLER = AccessRole.ADMIN.value, AccessRole.DISPATCHER.value, AccessRole.HANDLER.value
_INGEST, _VIEWER = AccessRole.INGEST.value, AccessRole.VIEWER.value

#: Every role (re-exported from the brain's interface).
ALL_ROLES = frozenset(ROLES)
#: May read events, evidence, staff, roster, KPIs, road units and streams.
READERS = frozenset({_ADMIN, _DISPATCHER, _HANDLER, _VIEWER})
#: May report events (cameras, sensors and citizens' apps are ``ingest``).
REPORTERS = frozenset({_ADMIN, _DISPATCHER, _INGEST})
#: May act on events that are not theirs, switch the mode and swap shifts.
DISPATCHERS = frozenset({_ADMIN, _DISPATCHER})
#: May act on events (a handler only on their own).
ACTORS = frozenset({_ADMIN, _DISPATCHER, _HANDLER})
#: May run what-if forks (minutes of CPU: not the handlers' phones).
PLANNERS = READERS - {_HANDLER}
#: May create tokens.
ADMINS = frozenset({_ADMIN})

#: URL action name → (workflow action, roles allowed; a handler only on their own event).
ACTIONS: Mapping[str, tuple[str, frozenset[str]]] = {
    "sign": ("sign", ACTORS),
    "arrive": ("arrive", ACTORS),
    "result": ("resolve", ACTORS),
    "verify": ("verify", DISPATCHERS),
    "escalate": ("escalate", ACTORS),
    "reinforcement": ("request_reinforcement", ACTORS),
    "reinforce": ("reinforce", ACTORS),
    "false-alarm": ("false_alarm", ACTORS),
    "merge": ("merge", DISPATCHERS),
    "dispatch": ("dispatch", DISPATCHERS),
    "reassign": ("reassign", DISPATCHERS),
    "reopen": ("reopen", DISPATCHERS),
    "withdraw": ("withdraw", DISPATCHERS),
    "consult": ("consult", DISPATCHERS),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who holds a bearer token.

    Attributes:
        id: A short, stable id of the token (not the token): what idempotency keys are kept
            under.
        role: One of :data:`actors.brain_api.ROLES`.
        member_id: The member a handler's token is bound to (``None`` for other roles).
        name: The token's label.
    """

    id: str
    role: str
    member_id: str | None = None
    name: str = ""

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> Principal:
        """A principal from the brain's answer (:meth:`actors.brain_api.BrainAPI.principal`)."""
        member = view.get("member_id")
        return cls(id=str(view["id"]), role=str(view["role"]), member_id=None if member is None else str(member),
                   name=str(view.get("name") or ""))

    @property
    def actor(self) -> str:
        """The audit log's actor: a handler's member id, else ``role:name`` (``role:id`` unnamed)."""
        if self.role == _HANDLER and self.member_id:
            return self.member_id
        return f"{self.role}:{self.name or self.id}"


def require(who: Principal, roles: frozenset[str], what: str) -> None:
    """Refuse (403) a caller whose role is not one of ``roles``; ``what`` says what they tried."""
    if who.role not in roles:
        raise ApiError(403, None, f"role '{who.role}' may not {what}; allowed: {', '.join(sorted(roles))}")


__all__ = ["ACTIONS", "ACTORS", "ADMINS", "ALL_ROLES", "DISPATCHERS", "PLANNERS", "READERS", "REPORTERS",
           "Principal", "require"]

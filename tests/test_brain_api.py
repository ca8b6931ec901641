"""The brain's interface is one contract: the in-process brain, the awaitable facade and the
blocking facade all offer every call of :class:`~actors.brain_api.BrainAPI` with its
signature (mypy checks the same statically); a transport forwards those calls and no other."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from actors.brain import Brain
from actors.brain_api import BRAIN_METHODS, ROLES, AccessRole, BrainAPI
from actors.client import BrainClient, LocalClient, SyncBrainClient, call_brain


def _params(fn: object) -> list[tuple[str, object, object]]:
    sig = inspect.signature(fn)  # type: ignore[arg-type]
    return [(p.name, p.kind, p.default) for p in sig.parameters.values()]


def test_the_contract_names_every_call_the_edges_make() -> None:
    assert len(BRAIN_METHODS) >= 25 and {"create_events", "road_changes", "principal", "snapshot"} <= BRAIN_METHODS
    assert not {name for name in BRAIN_METHODS if name.startswith("_")}


@pytest.mark.parametrize("name", sorted(BRAIN_METHODS))
def test_brain_and_both_facades_keep_the_contract(name: str) -> None:
    want = _params(getattr(BrainAPI, name))
    assert _params(getattr(Brain, name)) == want
    assert _params(getattr(SyncBrainClient, name)) == want
    assert inspect.iscoroutinefunction(getattr(BrainClient, name))
    assert _params(getattr(BrainClient, name)) == want


def test_a_transport_forwards_only_the_brains_calls(brain: Brain) -> None:
    assert call_brain(brain, "last_seq") == brain.last_seq()
    for name in ("event_view", "_replay", "log", "__class__"):
        with pytest.raises(AttributeError):
            call_brain(brain, name)
    assert LocalClient(brain).sync.now() == pytest.approx(brain.now(), abs=5.0)


def test_roles_are_named_once() -> None:
    from api.access import ALL_ROLES, DISPATCHERS, READERS, REPORTERS
    from api.models import TokenBody

    assert tuple(r.value for r in AccessRole) == ROLES
    assert frozenset(ROLES) == ALL_ROLES
    assert READERS | REPORTERS | DISPATCHERS == ALL_ROLES
    assert TokenBody.model_json_schema()["$defs"]["AccessRole"]["enum"] == list(ROLES)


def test_open311_imports_on_its_own() -> None:
    """No import cycle between the app and Open311: each imports first in a fresh process."""
    for module in ("api.open311", "api.app", "api.fast"):
        out = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True, check=False)
        assert out.returncode == 0, out.stderr

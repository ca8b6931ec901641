"""The brain's interface is one contract: the in-process brain, the awaitable facade and the
blocking facade all offer every call of :class:`~actors.brain_api.BrainAPI` with its
signature (mypy checks the same statically); a transport forwards those calls and no other."""

from __future__ import annotations

import inspect

import pytest

from actors.brain import Brain
from actors.brain_api import BRAIN_METHODS, BrainAPI
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

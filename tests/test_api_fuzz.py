"""Generated requests against the API's own OpenAPI schema (schemathesis + hypothesis): whatever
arrives, the answer is never a 5xx, and an error body always names a field or a reason."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from actors.brain import Brain  # noqa: E402
from actors.client import LocalClient  # noqa: E402
from actors.eventlog import open_log  # noqa: E402
from actors.host import AreaShards  # noqa: E402
from actors.live import Clock  # noqa: E402
from api.app import create_app  # noqa: E402
from scenarios import load_cached  # noqa: E402

_district = load_cached("xiaohe")
_dir = Path(__import__("tempfile").mkdtemp(prefix="streetbrain-fuzz-"))
_brain = Brain(_district, open_log(_dir / "events.db"),
               Clock(origin=datetime(2026, 3, 2, 10, 0, tzinfo=_district.roster.tz).timestamp()))
_token = _brain.create_token("admin", name="fuzz")["token"]
_cam = _district.cameras[0]
_lon, _lat = (float(v) for v in _district.projection.to_lonlat(_cam.x, _cam.y))
for _ in range(3):  # some events for the paths with an id to find
    _brain.create_event({"scenario": "CM01", "lon": _lon, "lat": _lat, "source": "camera"}, actor="fuzz")
app = create_app(LocalClient(_brain), tick_s=None, cameras=AreaShards(_district, 1, kinds=("cameras",)))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


# The stream never ends, and a what-if fork is minutes of simulation at the schema's limits
# (both have their own bad-input tests in test_api.py).
@schema.exclude(path="/api/v1/stream").exclude(path="/api/v1/whatif").parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_input_makes_a_server_error(case: schemathesis.Case) -> None:
    response = case.call(headers={"Authorization": f"Bearer {_token}"})
    case.validate_response(response, checks=(not_a_server_error,))
    if response.status_code >= 400:
        body = response.json()
        err = body["error"] if isinstance(body, dict) and "error" in body else body[0]
        assert err.get("reason") or err.get("description"), body

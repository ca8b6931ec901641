"""A district's map as a pydeck ``Deck``, and as a page that needs no network.

``pydeck.Deck.to_html(offline=True)`` inlines the deck.gl bundle but its template still links
map-tile scripts, Bootstrap and Font Awesome from CDNs; on a command centre's network without
internet those requests hang or fail. :func:`to_html` writes the same deck into a page of its
own: the bundle inline (:func:`bundle`), no base map other than the district's own layers,
nothing fetched.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pydeck as pdk

from twin.district import District

#: What a tooltip shows by default: whichever of these fields the picked object has.
TOOLTIP = {"html": "{id} {name} {scenario} {state} {squad} {role} {value}",
           "style": {"fontSize": "12px", "backgroundColor": "#263238", "color": "white"}}


def view_of(district: District, *, pitch: float = 0.0) -> pdk.ViewState:
    """A view of the whole district: its centre, a zoom at which its boundary fills ~600 px."""
    import math

    minx, miny, maxx, maxy = district.boundary.bounds
    lon, lat = district.projection.to_lonlat((minx + maxx) / 2, (miny + maxy) / 2)
    span_m = max(maxx - minx, maxy - miny, 100.0)
    # deck.gl's web-Mercator zoom (512-px world at zoom 0): metres per pixel 78271.5 cos(lat) / 2^z
    zoom = math.log2(78271.52 * math.cos(math.radians(float(lat))) * 600 / span_m)
    return pdk.ViewState(longitude=round(float(lon), 6), latitude=round(float(lat), 6), zoom=round(zoom, 2),
                         pitch=pitch, bearing=0)


def district_deck(district: District, layers: Sequence[pdk.Layer], *, tooltip: Any = True,
                  pitch: float = 0.0) -> pdk.Deck:
    """A deck of ``layers`` over ``district`` (no tiles: put :func:`viz.layers.base_layers`
    first for the district as the base map)."""
    return pdk.Deck(layers=list(layers), initial_view_state=view_of(district, pitch=pitch), map_provider=None,
                    map_style=None, tooltip=TOOLTIP if tooltip is True else tooltip)


@cache
def bundle_path() -> Path:
    """The deck.gl bundle pydeck's wheel ships (globals ``deck``, ``createDeck``)."""
    p = Path(pdk.__file__).resolve().parent / "nbextension" / "static" / "index.js"
    if not p.is_file():  # pragma: no cover - a broken pydeck install
        raise FileNotFoundError(f"deck.gl bundle: {p} is missing; reinstall pydeck")
    return p


def bundle() -> str:
    """The deck.gl bundle's text (4.3 MB)."""
    return bundle_path().read_text(encoding="utf-8")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>html,body{{margin:0;height:100%;background:#eceff1;font-family:system-ui,sans-serif}}
#map{{position:absolute;inset:0}}</style>
<script>{bundle}</script></head>
<body><div id="map"></div>
<script>
const spec = {spec};
window.deckReady = false;
createDeck({{container: document.getElementById('map'), jsonInput: spec, tooltip: {tooltip},
  configuration: null, customLibraries: null}});
window.deckReady = true;
</script></body></html>
"""


def to_json(deck: pdk.Deck) -> str:
    """``deck`` as deck.gl JSON, compact (pydeck's ``to_json`` indents: 2.5× the bytes, 109 MB
    for the base map of ``synthetic-100x`` against 41 MB)."""
    from pydeck.bindings.json_tools import default_serialize

    return json.dumps(deck, sort_keys=True, default=default_serialize, separators=(",", ":"))


def to_html(deck: pdk.Deck, *, title: str = "streetbrain") -> str:
    """A self-contained page of ``deck``: nothing is fetched from anywhere."""
    spec = to_json(deck)
    tip = getattr(deck, "_tooltip", True)
    tooltip = "true" if tip is True else ("false" if not tip else json.dumps(tip))
    return PAGE.format(title=html.escape(title), bundle=bundle().replace("</script", "<\\/script"),
                       spec=spec.replace("</", "<\\/"), tooltip=tooltip)


def write_html(deck: pdk.Deck, path: str | Path, *, title: str = "streetbrain") -> Path:
    """:func:`to_html` into a file."""
    p = Path(path)
    p.write_text(to_html(deck, title=title), encoding="utf-8")
    return p


__all__ = ["TOOLTIP", "bundle", "bundle_path", "district_deck", "to_html", "to_json", "view_of", "write_html"]

"""viz: pydeck / deck.gl maps, the cockpit page and replay, rendered offline."""

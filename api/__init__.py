"""api: the FastAPI edge of the live twin: native API, Open311 GeoReport v2, camera-event
ingest and live streams (issue #4)."""

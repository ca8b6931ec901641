"""detection: frames → detections → tracks → zone/dwell rules → events (torch)."""

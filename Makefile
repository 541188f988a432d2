# The project's one task entry point. `make run` and `make test` bootstrap .venv themselves.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed-stamp

.PHONY: run run-hybrid test lint typecheck unit tools docs bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Node tools the tests run (buf, protoc-gen-es, openapi-typescript, tsc, esbuild,
# playwright-core), pinned by package-lock.json.
NODE_STAMP = node_modules/.package-lock.json

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund

# Python tools the tests run as programs (schemathesis, openapi-python-client,
# kubernetes-validate, hadolint),
# pinned by tools/requirements.txt, in their own virtualenv.
TOOLS = .tools
TOOLS_STAMP = $(TOOLS)/.installed-stamp

$(TOOLS_STAMP): tools/requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r tools/requirements.txt
	touch $(TOOLS_STAMP)

tools: $(TOOLS_STAMP)

# The docs site's toolchain (MkDocs, Material for MkDocs), pinned with every
# dependency by tools/docs-requirements.txt, in its own virtualenv.
DOCS_TOOLS = .docs-tools
DOCS_STAMP = $(DOCS_TOOLS)/.installed-stamp
SITE ?= site

$(DOCS_STAMP): tools/docs-requirements.txt
	$(PYTHON) -m venv $(DOCS_TOOLS)
	$(DOCS_TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(DOCS_TOOLS)/bin/python -m pip install --quiet -r tools/docs-requirements.txt
	touch $(DOCS_STAMP)

# Every page of docs/ (README.md as the home page) into $(SITE)/: --strict fails
# on a broken link or #anchor and on a page missing from mkdocs.yml's nav; then
# every link of the built HTML is checked (external ones listed, not fetched).
# NO_MKDOCS_2_WARNING: Material's end-of-life banner, noted in the requirements.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(DOCS_TOOLS)/bin/mkdocs build --strict --site-dir $(SITE)
	$(DOCS_TOOLS)/bin/python tools/site_links.py $(SITE)

# `make run PORT=8080 GRPC_PORT=50052`; GRPC_PORT=0 serves no native gRPC.
PORT ?= 8000
GRPC_PORT ?= 50051

run: $(STAMP)
	$(BIN)/twofold serve examples.catalog:app --port $(PORT) --grpc-port $(GRPC_PORT)

# The hybrid (docs/gateway.md): the catalog's native gRPC inside, on GRPC_PORT (its own
# HTTP on INTERNAL_PORT), and `twofold gateway` as the public REST edge on PORT. The
# gateway waits for the catalog's reflection; both stop with the make.
INTERNAL_PORT ?= 8001
run-hybrid: $(STAMP)
	$(BIN)/twofold serve examples.catalog:app --port $(INTERNAL_PORT) --grpc-port $(GRPC_PORT) & \
	catalog=$$!; trap 'kill $$catalog' EXIT INT TERM; \
	$(BIN)/twofold gateway --upstream 127.0.0.1:$(GRPC_PORT) --port $(PORT)

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest-xdist: each test file runs whole in one of TEST_WORKERS processes (a
# module's server fixtures are started once); most of the suite waits on real
# servers and clients rather than computing, so two workers on two cores halve it.
TEST_WORKERS ?= 2

unit: $(STAMP) $(NODE_STAMP) $(TOOLS_STAMP) $(DOCS_STAMP)
	./scripts/ensure-nginx
	./scripts/ensure-go
	./scripts/ensure-postgres
	./scripts/ensure-chromium
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	./scripts/ensure-bench-tools
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(TOOLS) $(DOCS_TOOLS) $(SITE) node_modules .pytest_cache .mypy_cache .ruff_cache

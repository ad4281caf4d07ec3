# ShareFerry developer entry points. `make demo` and `make test` install what they need themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
NODE_STAMP := node_modules/.installed-stamp

.PHONY: demo test debian-packages lint typecheck layers unit bench clean chart-crds e2e cluster cluster-down cluster-tools

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## debian-packages: install the Debian libraries the tests' native tools need when missing (libsecret-1-0 for AzCopy)
debian-packages:
	@bash scripts/debian_packages.sh

## demo: start the Files emulator, run the example CopyJobs with `shareferry run` (folder → share, share → share sync), verify MD5s
demo: $(STAMP)
	$(PY) scripts/demo.py

## test: lint, type-check, layer rules, the control plane's binaries, then the whole pytest suite (emulator, Azurite, AzCopy, a real Kubernetes control plane)
test: $(STAMP) $(NODE_STAMP) debian-packages lint typecheck layers cluster-tools unit

## cluster: build what is missing, start a local Kubernetes control plane and process kubelet, print KUBECONFIG=<path>
cluster: $(STAMP)
	@$(PY) -m tests.cluster up

## cluster-down: stop the local control plane started by `make cluster`
cluster-down: $(STAMP)
	@$(PY) -m tests.cluster down

## cluster-tools: build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and helm from tests/cluster/*/go.mod (cached in ~/.cache/shareferry)
cluster-tools: $(STAMP)
	$(PY) -m tests.cluster build

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench scripts
	$(BIN)/ruff format --check operator tests bench scripts

typecheck: $(STAMP)
	MYPYPATH=operator $(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP) $(NODE_STAMP) debian-packages
	$(BIN)/pytest

## bench: emulator ingest rate beside Azurite's, sync memory at scale, no-op sync beside AzCopy, transfers beside AzCopy and rclone (see bench/README.md)
bench: $(STAMP) $(NODE_STAMP) debian-packages
	$(PY) bench/emulator_ingest.py
	$(PY) bench/sync_scale.py --sizes 10000,100000
	$(PY) bench/sync_vs_azcopy.py --quick
	$(PY) bench/transfer_vs_peers.py --quick

## chart-crds: copy crds/*.yaml into the Helm chart's crds/ (tests/chart checks they are identical)
chart-crds:
	rm -f charts/shareferry/crds/*.yaml
	cp crds/*.yaml charts/shareferry/crds/

## e2e: build the image, install the chart on a kind cluster and run the examples there (needs docker and kind)
e2e: $(STAMP) $(NODE_STAMP)
	SHAREFERRY_E2E=1 $(BIN)/pytest -m e2e tests/e2e -v

clean:
	-test -x $(PY) && $(PY) -m tests.cluster down  # a running `make cluster` keeps its state in .cache
	rm -rf $(VENV) node_modules .cache .pytest_cache .mypy_cache .ruff_cache

# NovaCron Automation — the same targets locally and in CI. `make help` lists them.
VENV ?= $(HOME)/.cache/novacron/venv
export PATH := $(VENV)/bin:$(PATH)
PYTEST_ARGS ?=

.PHONY: help install demo test test-unit check bench mutation kafka-start kafka-stop topics proto

help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## create the cached Python environment (outside the checkout) and install the project
	@deploy/local/install.sh

demo: install ## the main job: local Kafka, every worker role, the simulator, then a report
	novacron demo

test: install ## every test: unit and real-broker side by side (starts the local Kafka broker if needed)
	HYPOTHESIS_PROFILE=ci tests/run-all $(PYTEST_ARGS)

test-unit: install ## unit tests only (no broker)
	HYPOTHESIS_PROFILE=ci python -m pytest -q tests/unit $(PYTEST_ARGS)

check: install ## ruff, mypy, import-linter (layering), Rego unit tests, Prometheus rules
	ruff check .
	mypy schemas sinks agents models policies runbooks streams
	lint-imports
	novacron policy test policies/rego
	novacron policy test policies/compliance/rego
	@command -v promtool >/dev/null || { echo "promtool not found: it comes with Debian's \
	prometheus package (apt-get install prometheus; deploy/local/install.sh does it)"; exit 1; }
	promtool check rules deploy/prometheus/alerts.yml
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules deploy/prometheus/alerts_test.yml

bench: install ## benchmarks (JSON in bench/results/, table in bench/README.md)
	python bench/ingest_pipeline.py
	python bench/edge_rules.py
	python bench/sink_insert.py
	python bench/sql_isolation.py
	python bench/optimizer.py
	python bench/decision.py
	python bench/decision_snapshot.py
	python bench/autoscale_validation.py
	python bench/world_serve.py
	python bench/policy.py
	python bench/drift.py
	python bench/executor.py
	python bench/git_effector.py
	python bench/remote_write.py
	python bench/host.py
	python bench/learn_role_profile.py
	python bench/host_gc.py
	python bench/checkpoint_book.py
	python bench/decision_gauges.py
	python bench/followed_catchup.py
	python bench/e2e_latency.py

mutation: install ## mutation testing of the rule modules (mutmut; ~15 min on 2 cores): bench/results/mutation.json
	python bench/mutation.py

kafka-start: install ## start the local single-node Kafka 4.x broker (KRaft) on 127.0.0.1:9092
	novacron kafka start

kafka-stop: ## stop the local broker
	$(VENV)/bin/novacron kafka stop

topics: install ## create the topic catalogue
	novacron topics create

proto: ## regenerate agents/collectors/remote_pb2.py from remote.proto (protoc from grpcio-tools)
	python -m venv /tmp/novacron-protoc && /tmp/novacron-protoc/bin/pip install -q "grpcio-tools==1.85.1"
	cd agents/collectors && /tmp/novacron-protoc/bin/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. remote.proto

# The two set-up commands of the README: `make demo` (the main job) and `make test`.
.PHONY: demo test setup
setup:
	scripts/setup.sh

demo:
	scripts/demo.sh

# two workers: most tests are single-threaded Python (CI has 2 cores); TEST_WORKERS=0 runs in one process
TEST_WORKERS ?= 2
test: setup
	.venv/bin/python -m pytest -q -n $(TEST_WORKERS) tests

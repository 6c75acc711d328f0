# The two set-up commands of the README: `make demo` (the main job) and `make test`.
.PHONY: demo test setup
setup:
	scripts/setup.sh

demo:
	scripts/demo.sh

test: setup
	.venv/bin/python -m pytest -q tests

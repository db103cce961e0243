# The two commands the README promises. Both set everything up first.
PY ?= python

setup:
	$(PY) -m pip install -q -e ".[notebooks,test]"

demo: setup
	$(PY) -m clora_lite demo

test: setup
	$(PY) -m pytest -q tests notebooks --nbval

.PHONY: setup demo test

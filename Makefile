# The two commands the README promises. Both set everything up first.
PY ?= python

setup:
	$(PY) -m pip install -q -e ".[notebooks,test]"

demo: setup
	$(PY) -m clora_lite demo

test: setup
	$(PY) -m pytest -q tests notebooks --nbval

.PHONY: setup demo test

# Every step of scripts/gpu_check.sh on the CPU at tiny sizes (CI runs it after make test)
gpu-dry-run: setup
	bash scripts/gpu_check.sh --cpu-dry-run runs/gpu_check_dry

.PHONY: gpu-dry-run

# Regenerate every notebook from its .py twin (the reviewed source) and store the outputs of an offline,
# CI-sized run. Widget state is stripped afterwards (it holds PNGs): widgets come alive when the cell runs.
notebooks:
	cd notebooks && for f in [0-9]*.py; do \
	  jupytext --to ipynb --update -q "$$f" && \
	  CLORA_SMOKE=1 PLOTLY_RENDERER=plotly_mimetype jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.timeout=600 "$${f%.py}.ipynb" </dev/null && \
	  $(PY) -m clora_lite.notebook strip-widget-state "$${f%.py}.ipynb" || exit 1; done

.PHONY: notebooks

# Two commands do everything on a fresh machine:  `make book`  and  `make test`.
# Both create .venv when it is missing and install the project into it; they reinstall
# only when pyproject.toml changed since the last install.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mmtutor-installed
EXTRAS ?= book,pretrained,vectors,dev
# Per-cell time limit for notebooks run by the tests (training cells take tens of seconds).
NB_TIMEOUT ?= 600

.PHONY: help install book check-book test lint lab check-lab student-copies clean bench

help:
	@echo "make book   build the HTML book, executing every notebook  -> _build/html/index.html"
	@echo "make check-book  glued numbers printed; every built page in Chromium, fail on what a reader would see"
	@echo "make test   lint, package tests, then every notebook (offline) through nbmake"
	@echo "make lab    open the notebooks in JupyterLab (with jupyterlab-myst, the lab extra)"
	@echo "make check-lab  open chapters in 'make lab' in Chromium, fail on unrendered MyST"
	@echo "make student-copies  chapters and assignments without solutions  -> _build/student/"
	@echo "make bench  time every notebook, measure what each fusion costs  -> benchmarks/results/"
	@echo "make clean  remove build outputs (keeps .venv); 'make clean-all' also removes .venv"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

book: $(STAMP)
	tools/offline.sh $(VENV)/bin/jupyter-book build . --warningiserror --nitpick --keep-going
	@echo "Book: $(CURDIR)/_build/html/index.html"

# Every glued number is printed by a code cell above its paragraph (what JupyterLab readers
# see); then every built page in headless Chromium (network blocked) at 1280 and 390 px.
check-book: $(STAMP)
	$(PY) tools/check_glue.py _build/jupyter_execute
	tools/install_chromium.sh
	$(PY) tools/check_book.py _build/html

test: lint
	tools/offline.sh $(PY) -m pytest tests notebooks --nbmake --nbmake-timeout=$(NB_TIMEOUT) -p no:cacheprovider --durations=15

# Benchmarks print tables and write benchmarks/results/*.md; they are not tests (see README).
bench: $(STAMP)
	$(PY) benchmarks/notebook_times.py
	tools/offline.sh $(PY) benchmarks/fusion_cost.py
	tools/offline.sh $(PY) benchmarks/attention_sdpa.py
	tools/offline.sh $(PY) benchmarks/ner_real.py

# The lab extra adds jupyterlab-myst: JupyterLab then renders the chapters' MyST markup.
lab: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks

# What `make lab` shows, in headless Chromium (network cut off): exercise boxes, collapsed
# solutions, math, no raw MyST; notes what jupyterlab-myst cannot show (glue). Not in CI.
check-lab: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	tools/install_chromium.sh
	tools/offline.sh $(PY) tools/check_lab.py

# For courses without nbgrader (book/assignments.md).
student-copies: $(STAMP)
	$(PY) tools/student_copies.py _build/student

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +

clean-all: clean
	rm -rf $(VENV)

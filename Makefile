# One command per job. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The student's environment (make lab): the student wheel, the Jupyter stack, no instructor tools.
STUDENT_VENV := .venv-student
# What releases the assignment and builds the student wheel for make lab: the student venv's
# packages plus jupytext and setuptools (course/student/environment.py), never .venv's test tools.
BUILD_VENV := .venv-build
BUILD_PY   := $(BUILD_VENV)/bin/python

.PHONY: help setup lab test bytecode system-packages lint nbval bench bench-grading bench-seeds bench-section5 bench-report bench-profile report \
	isolation clean \
	clean-course notebook release validate autograde grade feedback export formgrader student-wheel \
	student-venv complete hub hub-deps certificates

help:  ## list the commands
	@grep -E '^[a-z0-9-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv with tinytorch and the pinned course, test and oracle packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,course,oracle]'
	touch $@

# Containers often run as root, which JupyterLab refuses without --allow-root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# The student works in work/07_training/, copied once from the release and never overwritten
# (course/student/workspace.py): a second `make lab` or a new release keeps every edited file.
# JupyterLab runs from the student's venv (course/student/environment.py, reinstalled only when the
# wheel, a pin or the student configuration changed): no solution, no instructor tools. A lab
# already serving work/07_training is named and not started twice (two kernels, one notebook).
# The URL it prints opens the notebook itself (LabApp.default_url), not JupyterLab's Launcher.
# Its terminals open in work/07_training, not here, with .venv-student/bin first on PATH, so
# `tinytorch complete 07_training.ipynb` works in them (the student configuration's
# binder/jupyter-student/jupyter_server_config.py).
# Nothing here needs .venv (tests, PyTorch, Playwright): any python3 makes the student venv
# (pip's progress shown), .venv-build adds jupytext to it to release, and the release, the
# working copy and the student wheel are made with that.
lab:  ## open the student's working copy (from the release: no solutions) in JupyterLab
	@$(PYTHON) -m course.student.workspace --refuse-if-served
	@$(MAKE) --no-print-directory student-venv
	@echo "[4/4] releasing the assignment (nbgrader, a few seconds) and opening JupyterLab"
	$(BUILD_PY) -m course.authoring.release
	$(BUILD_PY) -m course.student.workspace >/dev/null
	$(STUDENT_VENV)/bin/jupyter lab $(ROOT_FLAG) --ServerApp.root_dir=work/07_training \
		--LabApp.default_url=/lab/tree/07_training.ipynb

# The student's finished notebook becomes their tinytorch (course/student/complete.py): every check runs
# on the assembled Module 07 first; then it is written beside the notebook (work/07_training/
# tinytorch) and into the tinytorch of the student's venv (the one `make lab` runs). It runs
# with that venv's Python (no instructor tools there), made first if it is missing.
# The student's own command (tinytorch/complete/, in the student wheel: what a student on Binder
# or a hub runs as `tinytorch complete NOTEBOOK`), with the course's default notebook; the
# reference solution and the nbgrader course folder are never written into.
NOTEBOOK ?= work/07_training/07_training.ipynb
complete:  ## your checked answers become your tinytorch's Module 07 (NOTEBOOK=other.ipynb)
	@test -x $(STUDENT_VENV)/bin/tinytorch || $(MAKE) --no-print-directory student-venv
	@echo "$(STUDENT_VENV)/bin/tinytorch complete $(NOTEBOOK)"
	@$(STUDENT_VENV)/bin/tinytorch complete $(NOTEBOOK) \
		--protect "$(CURDIR)/tinytorch=the course's reference solution" \
		--protect "$(CURDIR)/notebooks=the nbgrader course folder (make release regenerates it)"

# The student's environment in three steps, each skipped when up to date: the Jupyter stack
# (any python3, standard library only), the build venv over it, then the student wheel (built
# by the build venv: Module 07 stripped, scanned) and the students' Jupyter configuration.
student-venv:  ## create or update the student's environment .venv-student/ (make lab does)
	@echo "[1/4] the student's Jupyter stack in $(STUDENT_VENV)/ (pip's progress below)"
	@$(PYTHON) -m course.student.environment stack --venv $(STUDENT_VENV)
	@echo "[2/4] the release's tools in $(BUILD_VENV)/ (jupytext, setuptools: seconds)"
	@$(PYTHON) -m course.student.environment build-venv --venv $(BUILD_VENV) --student $(STUDENT_VENV)
	@echo "[3/4] the student wheel (Module 07 stripped, scanned) and the Jupyter configuration"
	@$(BUILD_PY) -m course.student.environment venv --venv $(STUDENT_VENV)

# The repository's modules compiled once, so that the many processes the tests and benchmarks
# start (make, nbgrader, the grader, the hub's servers) read bytecode instead of compiling them
# again, also where PYTHONDONTWRITEBYTECODE is set; nothing made for students copies __pycache__.
BYTECODE_DIRS := checks course tinytorch benchmarks tests
bytecode: setup
	@$(PY) -m compileall -q -j 0 $(BYTECODE_DIRS) >/dev/null

test: setup lint system-packages hub-deps bytecode  ## every test: lint, notebook in sync, pytest (grading, browser, hub), nbval
	$(PY) -m course.grading.sandbox
	$(PY) -m course.authoring.build --check
	$(PY) -m pytest -n auto --dist loadgroup -m "not serial" --durations=40
	$(PY) -m pytest -m serial --durations=10
	$(MAKE) --no-print-directory nbval

# The browser test drives Debian's chromium through Playwright (Playwright cannot download its own
# browsers here); trusted grading sandboxes student code with bubblewrap; the hub tests install
# configurable-http-proxy with npm and make the hub's environments from Debian's python3 (venv).
# All are installed from Debian's packages when missing and we may; otherwise say how.
SYSTEM_PACKAGES := $(if $(wildcard /usr/bin/chromium),,chromium) $(if $(wildcard /usr/bin/bwrap),,bubblewrap) \
	$(if $(shell /sbin/ldconfig -p | grep 'libseccomp\.so\.2 '),,libseccomp2) \
	$(if $(shell command -v npm),,npm) \
	$(if $(shell /usr/bin/python3 -c 'import ensurepip' 2>/dev/null && echo ok),,python3-venv)
# PostgreSQL's server, which the shared-gradebook test starts: installed as root; otherwise that
# test is skipped, saying why.
SERVER_PACKAGES := $(if $(wildcard /usr/lib/postgresql/*/bin/initdb),,postgresql)
system-packages:  ## make sure Debian's chromium, bubblewrap and postgresql are installed (tests, grading)
	@test -z "$(strip $(SERVER_PACKAGES))" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SERVER_PACKAGES); \
	  else echo "note: $(SERVER_PACKAGES) is missing: the shared-gradebook test will be skipped (sudo apt-get install $(SERVER_PACKAGES))" >&2; fi; }
	@test -z "$(strip $(SYSTEM_PACKAGES))" || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES); \
	  else echo "missing: $(SYSTEM_PACKAGES): sudo apt-get install $(SYSTEM_PACKAGES)" >&2; \
	    exit 1; fi; }

lint: setup  ## ruff over the whole repository
	$(PY) -m ruff check .

nbval: setup  ## run the source notebook top to bottom under nbval (errors fail)
	cd notebooks/source/07_training && ../../../$(PY) -m pytest -p no:cacheprovider --nbval-lax \
		-o addopts="" -o testpaths="" -o filterwarnings="" 07_training.ipynb

# A real JupyterHub for a demo class (course/classroom/hub.py): an instructor and three students as Unix
# accounts (root only), each student's server from the student environment (build/hub/
# student-venv: the student wheel, the Jupyter stack, jupyterhub), the instructor's from
# build/hub/instructor-venv (this repository, editable, with the course and hub extras), both made
# from a Python every account can run; nbgrader's exchange (1777) and course id. It prints the URL
# and the accounts' passwords; Ctrl-C stops it all and removes the accounts.
HUB_STAMP := $(VENV)/.hub-installed
hub-deps: setup  ## install what make hub needs: configurable-http-proxy (npm) and the hub's environments (build/hub)
	@test -f $(HUB_STAMP) -a $(HUB_STAMP) -nt pyproject.toml || { \
	  $(PY) -m pip install --quiet -e '.[hub]' && touch $(HUB_STAMP); }
	@$(PY) -c "from course.classroom import hub; print(hub.ensure_proxy()); \
	  print(hub.student_environment()); print(hub.instructor_environment())"

hub: hub-deps  ## start a local JupyterHub for a demo class (as root; Ctrl-C stops and removes it)
	$(PY) -m course.classroom.hub $(if $(PORT),--port $(PORT))

# ---- the instructor's commands (nbgrader course root: notebooks/)
NBGRADER := cd notebooks && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ../$(PY) -m nbgrader

notebook: setup  ## regenerate the notebook and GRADING.md from the lesson and training.py
	$(PY) -m course.authoring.build

student-wheel: setup  ## build the student wheel into dist/: tinytorch (Module 07 stripped) and checks, scanned
	$(PY) -m course.student.environment wheel

release: setup  ## student release: notebook without solutions + stripped tinytorch; scanned
	$(PY) -m course.authoring.release

validate: release  ## source passes every graded cell; release fails only NotImplementedError
	$(PY) -m course.authoring.validate

# CLUSTER=tls://HOST:8786 grades on a Dask cluster's workers over mutual TLS, with the course's
# certificates (make certificates; CERTIFICATES=dir when they are elsewhere than
# cluster-certificates/) (docs/instructor-guide.md); a plain tcp:// address is refused off
# loopback. REGRADE=1 grades again what notebooks/autograde-cache/ already holds for this release.
# SUBMISSIONS=dir/ imports a folder of downloads first (course/classroom/imports.py): TIMES=times.csv
# their times, STUDENTS=map.csv (file,student) the ids of names the slug rule cannot read, REPLACE=1
# a changed submission even when it is not later than the one held (kept in notebooks/replaced/).
autograde: setup  ## trusted grades of notebooks/submitted/ (or SUBMISSIONS=dir/) into the gradebook (CLUSTER=tls://HOST:8786, COURSE=another course root)
	$(if $(CERTIFICATES),TINYTORCH_CLUSTER_CERTIFICATES=$(abspath $(CERTIFICATES))) $(PY) -m course.classroom.autograde $(SUBMISSIONS) $(if $(COURSE),--course $(COURSE)) $(if $(CLUSTER),--cluster $(CLUSTER)) $(if $(REGRADE),--regrade) \
		$(if $(TIMES),--times $(TIMES)) $(if $(STUDENTS),--students $(STUDENTS)) $(if $(REPLACE),--replace)

# The course's CA and one certificate per role of its Dask cluster (scheduler, workers, the
# grader), made once into CERTIFICATES=dir (default cluster-certificates/: mode 0700, keys 0600,
# never in git, never removed by make clean); course/grading/certificates.py.
certificates: setup  ## make the course's CA and its grading cluster's certificates (CERTIFICATES=dir)
	$(PY) -m course.grading.certificates make $(CERTIFICATES)

grade: setup  ## grade one file in a sandbox and print JSON: make grade FILE=path/to/07_training.ipynb
	@test -n "$(FILE)" || { echo "usage: make grade FILE=path/to/notebook.ipynb" >&2; exit 2; }
	@$(PY) -m course.grading.grade "$(FILE)"

isolation: setup  ## print the isolation layers a graded run gets on this machine
	@$(PY) -m course.grading.sandbox

feedback: setup  ## HTML feedback for every autograded submission (notebooks/feedback/), one process per core
	$(PY) -m course.classroom.nbgrader_trusted feedback

export: setup  ## every student's grades to notebooks/grades.csv
	$(NBGRADER) export

# The class at a glance (course/classroom/report.py): totals, each graded cell's discrimination,
# the mistakes the checks named by code, hand grades; from the gradebook and the reports kept by
# make autograde. NAMES=1 adds a table naming each student.
report: setup  ## the class at a glance: notebooks/class-report/index.html (+ summary.json, CSVs)
	$(PY) -m course.classroom.report $(if $(COURSE),--course $(COURSE)) $(if $(NAMES),--names)

# nbgrader's formgrader, to grade the written answers (course/classroom/formgrader.py): JupyterLab
# from .venv in the course root, on a free port of 127.0.0.1 (make lab's student lab may hold
# 8888), with the course's extension (the maths offline, each answer's rubric from
# docs/instructor-guide.md beside it, students named: notebooks/roster.csv if there is one).
# It prints the formgrader's URL with its token; OPEN=1 opens it in a browser; Ctrl-C stops it.
formgrader: setup  ## grade the written answers in nbgrader's formgrader: prints its URL (OPEN=1 opens it, COURSE=another course root)
	$(PY) -m course.classroom.formgrader $(if $(COURSE),--course $(COURSE)) $(if $(OPEN),--open)

bench: setup  ## time a 784-256-10 MLP training step: tinytorch vs numpy vs PyTorch
	$(PY) -m benchmarks.train_step

bench-grading: setup bytecode  ## grade a class of 100 (correct, mutants, cheats) against kernels run serially
	$(PY) -m benchmarks.grading

bench-seeds: setup bytecode  ## every check at 1,000 hidden seeds: correct code loses nothing, no bug escapes
	$(PY) -m benchmarks.hidden_seeds

bench-section5: setup  ## section 5's times in 5 fresh processes: how far medians move, whether spreads agree
	$(PY) -m benchmarks.section5

bench-report: setup bytecode  ## make report for the benchmark's class of 100, then for 1,000 copied from it
	$(PY) -m benchmarks.report

bench-profile: setup bytecode  ## one submission from file to feedback page, stage by stage: where the cost goes
	$(PY) -m benchmarks.profile_submission

# `make clean` removes only what a command makes again: the venvs (make setup, make lab; a
# student's Module 07 written into .venv-student comes back with make complete), dist/ (make
# student-wheel), caches, and the release with its staged packages (make release). Never the
# student's working copy work/ nor the course's data (submissions, grades, feedback):
# `make clean-course` removes those, after listing them and asking (course/classroom/clean.py: the
# standard library only, so any python3 runs it). Nothing is removed while a process runs from
# one of the venvs (a JupyterLab of make lab, a formgrader, a kernel: removed under them, they
# fail): course/classroom/in_use.py (standard library only too) names each and refuses;
# FORCE=1 removes anyway.
clean:  ## remove .venv/, .venv-student/, .venv-build/, dist/, caches, notebooks/release/ and the staged source/07_training/{tinytorch,checks}/; never work/ nor course data; refused while a process runs from a venv (FORCE=1: remove anyway)
	@$(PYTHON) -m course.classroom.in_use --root "$(CURDIR)" $(if $(FORCE),--force) \
		$(VENV) $(STUDENT_VENV) $(BUILD_VENV)
	rm -rf $(VENV) $(STUDENT_VENV) $(BUILD_VENV) dist .pytest_cache .ruff_cache .hypothesis
	cd notebooks && rm -rf release source/07_training/tinytorch source/07_training/checks

clean-course:  ## list the course's data (notebooks/submitted, replaced, autograded, feedback, autograde-cache, gradebook.db, grades.csv), ask, remove it (YES=1: no question)
	$(PYTHON) -m course.classroom.clean $(if $(YES),--yes)

"""The student wheel and the student's environment made from it (``student_wheel``,
``lab_venv``) are session fixtures of ``tests/conftest.py``, shared with ``tests/hub``."""

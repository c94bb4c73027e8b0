"""The student's side: what a student environment installs and ``make lab``'s venv
(``environment``), the working copy that is never overwritten (``workspace``), and a finished
notebook made into the student's own tinytorch (``complete``)."""

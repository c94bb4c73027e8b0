"""The class: nbgrader's pipeline carrying trusted grades (``nbgrader_trusted``, ``autograde``),
the feedback page (``feedback``), answers graded by hand (``manual``), removing the course's
data (``clean``), what still runs from the venvs ``make clean`` removes (``in_use``), and a real
JupyterHub for a class (``hub``). May use every room."""

"""What every room agrees on: where the course's files live (``paths``), the assignment's cells
as nbgrader marks them (``cells``), its solution markers (``solutions``), the packages a student
receives (``packages``), the Python packages a student installs at the course's pins
(``pins``) and nbgrader's settings for the course (``config``). Uses no other room."""

"""What every room agrees on: where the course's files live (``paths``), the assignment's cells
as nbgrader marks them (``cells``), its solution markers (``solutions``), the packages a student
receives (``packages``) and nbgrader's settings for the course (``config``). Uses no other
room."""

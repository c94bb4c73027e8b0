"""A Dask worker preload (``dask worker --preload``) that makes this worker's sandbox check fail,
as on a machine where bubblewrap is missing or user namespaces are forbidden."""

from course.grading import sandbox

sandbox.bubblewrap_works = lambda: False

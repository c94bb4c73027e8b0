"""Trusted grading: a score is decided by trusted code in a process that never ran student code.

* one submission: ``submission`` (the trust model, ``grade_one``), ``sandbox`` and
  ``cgroups`` (where student code runs, and its limits), ``observer`` (what runs inside),
  ``intake`` (reading what a submission hands over, within bounds), ``budget`` (what judging
  may use);
* a class: ``batch`` (grading one submission mapped over a class through a runner),
  ``process`` (a grading process), ``pool`` (this machine's processes), ``cluster`` (a Dask
  cluster's workers), ``certificates`` and ``roles`` (who may be part of that cluster: the
  course's CA, and the scheduler's check of each peer's role), ``slots`` (sandbox uids unique
  on a host);
* around it: ``cache`` (decided reports kept), ``progress`` (bars and counted lines),
  ``grade`` (``python -m course.grading.grade``: grade files, print JSON).

Uses only ``course.assignment``."""

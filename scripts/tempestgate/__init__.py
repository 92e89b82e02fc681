"""stackbox's Tempest gate runner (``scripts/tempest``).

It installs Tempest into ``.tempest/venv``, starts a fresh ``stackbox up``, writes a
``tempest.conf`` that matches that cloud, runs a selection of tests and judges the result.
Only the standard library is used here, so any Python 3.11 can run it; the one piece that
needs Tempest's own libraries (reading the subunit results) runs inside Tempest's venv.
"""

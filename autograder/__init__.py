"""The autograder of the spam-vs-ham Transformer lab (never released to students).

Three boundaries, one package each:

- ``sandbox``: runs a notebook isolated from the course, with limits;
  ``sandbox/payload`` is what runs inside it and never imports the kit.
- ``grading``: decides a grade: the GradingJob, the engine, the warm check
  process, re-evaluation, the evidence schema and the hidden checks.
- ``course``: operates a course: its root, intake, the Dask batch, rechecks,
  the gradebook writer, exports, the class report, calibration, the demo.

Across them: ``model`` (the status enum and the typed results), ``errors``,
``settings`` (traitlets, read from course_config.py), ``nbgrader_plugins``
(every class nbgrader loads), ``api`` (the kit as functions) and ``cli``
(``spamkit``, which parses and renders).
"""

import sys

# jsonschema (under nbformat and nbgrader) imports this optional IRI format checker when it is installed
# (jupyter-events' dependencies bring it): building its grammar takes about 2 s of CPU in every process
# that imports the kit (spamkit, the check process). No schema the kit validates has a "format", and
# without the module jsonschema only lacks the "iri" formats. A process that imported jsonschema first
# keeps it. The sandbox's runner does the same on its own (payload/runner.py).
sys.modules.setdefault("rfc3987_syntax", None)

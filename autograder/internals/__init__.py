"""Third-party private names the kit depends on, fenced: one module per library.

Each module here is named for the library it reaches into and lists every
private name it uses in ``FENCED`` (dotted ``module:attribute.path`` strings),
each with a comment saying why no public API does the job.  The rest of the
kit imports these names from here, never from the library directly, and
``tests/unit/test_internals.py`` resolves every ``FENCED`` entry at the pinned
versions, so a library release that moves one fails with the library's name.

The sandbox's payload (``sandbox/payload/runner.py`` and ``capture.py``) runs
where the kit's package is not importable, so the fences it uses (jupyter_client,
keras, matplotlib, nbclient, nbgrader: ``sandbox.spec.PAYLOAD_INTERNALS``) are
self-contained files that import nothing of the kit: bwrap copies each into the
sandbox as ``/opt/kit/internals/<library>.py`` and the payload loads it by its
path (capture.py with the guard's copy of the builtins). Their library imports
happen inside functions, so importing a fence costs nothing (the hidden checks
take Keras' qualified names from ``keras.py`` without starting TensorFlow).
"""

"""The ``draftlens`` command and its parts, apart from the engine in ``derived``.

- ``cli``: the command line (``draftlens plan|run|demo|cache|sessions|serve``), ``main``;
- ``pipeline``: pipeline files (TOML: sources, lens instances, caps, executor);
- ``folders``: a run's output folders, checked, made and held by one run at a time;
- ``reasons`` and ``truncation``: what ``draftlens plan`` says about each job and cap;
- ``runfile``: run records (``run.json``, ``plan --json``);
- ``report``: the HTML report (``report.html``);
- ``demo``: the bundled example pipelines and their sample clips;
- ``http``: the HTTP door to work sessions (``draftlens serve``, optional extra ``http``).

These modules use the engine (``derived.recompute_derived``, plans, executors,
the memo); the engine never imports them. This package imports none of them
itself, so ``python -m derived.command.cli`` runs the command without a second
copy of its module.
"""

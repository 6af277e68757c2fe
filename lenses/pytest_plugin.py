"""pytest plugin for testing your own lenses: a ``check_lens`` fixture and ``--lens-examples``.

Installed with draftlens (the ``pytest11`` entry point ``draftlens``), so

    def test_my_lens(check_lens):
        check_lens(my_lens)

works in any project, as does ``from lenses.testing import check_lens``. A
broken rule fails the test with ``LensContractError: [rule-id] ...`` and
hypothesis' usual report of the (shrunk) failing example. ``--lens-examples N``
sets how many examples each property of ``check_lens`` tries (default: the
active hypothesis profile's ``max_examples``; ``--hypothesis-profile`` works
as usual).

hypothesis is imported only when a test uses the fixture or the option is
given, so having draftlens installed never makes pytest need hypothesis.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("draftlens", "draftlens lens contract checks")
    group.addoption(
        "--lens-examples",
        type=int,
        default=None,
        metavar="N",
        help="examples each check_lens property tries (default: the hypothesis profile's max_examples)",
    )


def pytest_configure(config: pytest.Config) -> None:
    examples = config.getoption("lens_examples", None)
    if examples is not None:
        if examples < 1:
            raise pytest.UsageError(f"--lens-examples must be at least 1, got {examples}")
        from lenses.testing import checker

        checker._DEFAULTS["max_examples"] = examples


def pytest_unconfigure(config: pytest.Config) -> None:
    checker = __import__("sys").modules.get("lenses.testing.checker")
    if checker is not None and config.getoption("lens_examples", None) is not None:
        checker._DEFAULTS["max_examples"] = None


@pytest.fixture
def check_lens():
    """``lenses.testing.check_lens``: property-test a lens against the draftlens contract."""
    from lenses.testing import check_lens as check

    return check

"""Fixtures of the CLI tests (suite `cli`, one meson test per test_*.py module, each run as
`/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cli/test_NAME.py`).

* `recalign` (session, autouse): the binary's absolute path, from the environment variable
  RECALIGN_CLI that tests/cli/meson.build sets; it also sets cli_common.RECALIGN, so
  `cli_common.run(...)` and friends run that binary.
* `tmp` (module): a fresh directory (a str) shared by the tests of one module, which build
  their data files in it once.
* `fashion_mnist` (session): the Fashion-MNIST training files (Debian package
  dataset-fashion-mnist, or the directory in RECALIGN_FASHION_MNIST, which the binary
  honours too); the test is skipped when they are missing.

A missing data set must not read as a pass: a module exits 77 (meson's SKIP) instead of
pytest's 0 when nothing failed and either every test skipped or one skipped because
`fashion_mnist` found no data. Tests needing a data set live in a module of their own
(test_default_data.py), so that the others still report their passes.

Run one module by hand:
    RECALIGN_CLI=build/tools/recalign/recalign PYTHONPATH=tests/cli:tests \\
        /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/cli/test_formats.py
"""
import os

import pytest

import cli_common
from data_sets import MESON_SKIP, fashion_mnist_missing, fashion_mnist_train


@pytest.fixture(scope="session", autouse=True)
def recalign():
    path = os.environ.get("RECALIGN_CLI")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"RECALIGN_CLI={path!r} is not an executable recalign binary", pytrace=False)
    cli_common.RECALIGN = os.path.abspath(path)
    return cli_common.RECALIGN


@pytest.fixture(scope="module")
def tmp(tmp_path_factory, request):
    return str(tmp_path_factory.mktemp(request.module.__name__))


@pytest.fixture(scope="session")
def fashion_mnist():
    """(train images, train labels) paths; skips when either file is missing."""
    reason = fashion_mnist_missing()
    if reason:
        _outcomes["data set missing"] = True
        pytest.skip(reason)
    return fashion_mnist_train()


def pytest_configure(config):
    config.addinivalue_line("markers", "accuracy: compares numbers with the exact route or an oracle at sizes "
                                       "whose code paths smaller tests run too; left out of the sanitized run")


def pytest_collection_modifyitems(config, items):
    """Tests marked `accuracy` spend their time in arithmetic the release build checks: under
    the sanitizers (scripts/test_sanitized.sh; tests/SANITIZERS.md) they are skipped, for CI's
    time. What they drive (the sketch routes, verification and refinement passes) the module's
    other tests run sanitized on smaller data."""
    path = os.environ.get("RECALIGN_CLI")
    if not path or not os.access(path, os.R_OK):
        return
    with open(path, "rb") as f:
        if b"__asan_init" not in f.read():
            return
    skip = pytest.mark.skip(reason="an accuracy test: run by the release build, not the sanitized one")
    for item in items:
        if "accuracy" in item.keywords:
            item.add_marker(skip)


_outcomes = {"passed": 0, "failed": 0, "skipped": 0, "data set missing": False}


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":  # a skip or error in setup counts too
        _outcomes[report.outcome] += 1


def pytest_sessionfinish(session, exitstatus):
    all_skipped = _outcomes["skipped"] and not _outcomes["passed"] and not _outcomes["failed"]
    if exitstatus == pytest.ExitCode.OK and (all_skipped or _outcomes["data set missing"]):
        session.exitstatus = MESON_SKIP

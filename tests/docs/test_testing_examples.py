"""docs/testing.md and docs/testing-parity.md: their examples run, the plugin's
by pytest itself (pytester)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from docs_src.testing import async_tests, sync_tests
from docs_src.testing.app import phrasebook
from tests.e2e.server import start

FIXTURES_EXAMPLE = Path(sync_tests.__file__).with_name("test_with_fixtures.py")
PARITY_EXAMPLE = Path(sync_tests.__file__).with_name("test_parity.py")
RUNNING_SERVER = Path(sync_tests.__file__).with_name("running_server.py")


def test_the_sync_examples_pass() -> None:
    sync_tests.test_greet()
    sync_tests.test_a_stream_is_read_as_it_comes()
    sync_tests.test_errors_are_the_servers()
    assert phrasebook.salutation is None


def test_the_async_example_passes() -> None:
    asyncio.run(async_tests.test_greet())


def test_the_plugin_is_loaded_by_its_entry_point(pytestconfig: pytest.Config) -> None:
    plugin = pytestconfig.pluginmanager.get_plugin("twofold")
    assert plugin is not None
    assert plugin.__name__ == "twofold.testing.plugin"


def test_the_fixtures_example_passes(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(str(FIXTURES_EXAMPLE), "-p", "no:cacheprovider")
    # One test, one per wire (six), one async.
    result.assert_outcomes(passed=8)


def test_without_an_app_fixture_the_error_says_what_to_define(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_x(twofold_client):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*define a `twofold_app` fixture*"])


def test_the_protocol_fixture_can_be_overridden(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from docs_src.testing.app import app

        @pytest.fixture
        def twofold_app():
            return app

        @pytest.fixture(params=["rest", "connect-proto"])
        def twofold_protocol(request):
            return request.param
        """
    )
    pytester.makepyfile(
        """
        def test_x(twofold_client):
            assert twofold_client.greet(name="Ada").text == "Hello, Ada!"
            assert twofold_client.protocol in ("rest", "connect-proto")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2)


def test_the_parity_example_passes_and_skips_what_a_wire_cannot_carry(
    pytester: pytest.Pytester,
) -> None:
    result = pytester.runpytest(str(PARITY_EXAMPLE), "-p", "no:cacheprovider", "-v", "-rs")
    # Five cases on nine wires, and the hand-written test on nine: id_text is
    # skipped on the three protobuf wires, adds on rest, rest-xml and connect-get.
    result.assert_outcomes(passed=5 * 9 + 9 - 6, skipped=6)
    result.stdout.fnmatch_lines(
        [
            "*test_shelf::found[[]connect-proto[]] PASSED*",
            "*test_shelf::id_text[[]grpc-web[]] SKIPPED*",
            "*test_shelf::adds[[]rest[]] SKIPPED*",
            "*test_found_on_every_wire[[]grpc[]] PASSED*",
        ]
    )


def test_the_parity_example_runs_against_a_running_server(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = start("docs_src.testing.shelf:app", tmp_path)
    try:
        monkeypatch.setenv("SHELF_URL", server.url)
        monkeypatch.setenv("SHELF_GRPC_TARGET", server.grpc_target)
        pytester.makeconftest(RUNNING_SERVER.read_text())
        pytester.makepyfile(test_parity=PARITY_EXAMPLE.read_text())
        result = pytester.runpytest("-p", "no:cacheprovider", "-v")
    finally:
        server.stop()
    result.assert_outcomes(passed=5 * 9 + 9 - 6, skipped=6)
    # Served over the network: the server logged the calls.
    lines = server.access_lines()
    requests = {(line.get("request"), line.get("status")) for line in lines}
    assert ("GET /books/1", 200) in requests
    assert ("POST /shelf.v1.ShelfService/GetBook", 200) in requests

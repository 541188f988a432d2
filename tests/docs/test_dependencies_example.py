"""docs/dependencies.md: its examples run, and the plugin's ``twofold_overrides`` fixture works."""

from __future__ import annotations

import pytest

from docs_src.dependencies import tests


def test_the_examples_pass() -> None:
    tests.test_a_refused_note_is_rolled_back()
    tests.test_with_a_database_of_the_tests_own()


def test_the_overrides_fixture_reaches_the_test_clients(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from twofold import Provide
        from docs_src.dependencies.app import app
        from docs_src.dependencies.tests import empty_engine
        from sqlalchemy.ext.asyncio import AsyncEngine

        @pytest.fixture
        def twofold_app():
            return app

        @pytest.fixture
        def twofold_overrides():
            return [Provide(AsyncEngine, empty_engine, scope="app")]

        def test_x(twofold_client):
            assert twofold_client.get_note(id=7).text == "from the test"

        @pytest.mark.anyio
        async def test_y(twofold_async_client):
            assert (await twofold_async_client.get_note(id=7)).text == "from the test"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)

"""The fake Label Studio of the scripts' tests, reached through ``responses`` (no socket)."""
from __future__ import annotations

import pytest
import responses

from scripts.fake_label_studio import FakeLabelStudio


@pytest.fixture
def fake():
    ls = FakeLabelStudio("http://ls.test:8080")
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        ls.register(rsps)
        yield ls

from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.fakebot import message_update


@pytest.fixture
def kb_dir() -> Path:
    return FIXTURES / "kb_small"


async def test_question_is_answered_through_the_bot(app, fake_api):
    await app.process_update(message_update(app.bot, "家里着火了怎么逃生"))
    assert "119" in fake_api.last().text

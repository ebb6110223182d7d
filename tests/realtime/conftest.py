import pytest
from nodes import Nodes


@pytest.fixture
async def nodes(settings):
    n = Nodes(settings)
    yield n
    await n.stop_all()

"""``TIDINGS_TYPES``: types kept in a file are created or replaced when a node starts."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest

from tidings.core.errors import ConfigError
from tidings.services.types import Types

from helpers import PRODUCER, serve_node


async def test_a_node_starts_with_the_types_of_its_file(settings, http, tmp_path):
    name = f"file-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "types.json"
    path.write_text(json.dumps({name: {"title": "From the file", "required": True,
                                       "push": {"when": "always"}}}))
    async with serve_node(replace(settings, types=f"@{path}")) as node:
        async with http.get(f"{node.url}/api/v1/types/{name}", headers=PRODUCER) as r:
            assert r.status == 200
            doc = await r.json()
    assert doc["title"] == "From the file" and doc["required"] is True


@pytest.mark.parametrize(("text", "says"), [
    ('{"x": {"title": "T", "templates": {"push": {"body": "{{ nope }}"}}}}',
     "type 'x': templates.push.body: unknown name 'nope'"),
    ('{"bad name": {"title": "T"}}', "type 'bad name'"),
    ('{"x": {"channels": {"push": true}}}', "title"),
    ("[]", "Expected 'object'"),
])
async def test_a_types_file_that_is_not_valid_stops_the_start(pool, text, says):
    with pytest.raises(ConfigError) as caught:
        await Types(pool).load_setting(text)
    assert caught.value.setting == "TIDINGS_TYPES" and says in str(caught.value)


async def test_a_types_file_that_cannot_be_read_names_the_setting(pool, tmp_path):
    with pytest.raises(ConfigError, match="TIDINGS_TYPES: cannot read"):
        await Types(pool).load_setting(f"@{tmp_path / 'missing.json'}")

"""docs/formats.md is a specification: every example in it parses exactly as shown, and every
registered parser has a section there and tests here."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from logharbor.formats import build_parser, load_builtins
from logharbor.formats.multiline import build_multiline

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "formats.md").read_text()
BLOCK = r"\s*```text\n(.*?)\n```\s*```json\n(.*?)\n```"
EXAMPLES = re.findall(r"<!-- example (\w+)(?: (\{.*?\}))? -->" + BLOCK, DOC, re.S)
MULTILINE = re.findall(r"<!-- multiline (\{.*?\}) -->" + BLOCK, DOC, re.S)


def test_the_page_has_examples() -> None:
    assert len(EXAMPLES) >= 12 and len(MULTILINE) >= 2


@pytest.mark.parametrize("name,options,line,expected", EXAMPLES,
                         ids=[f"{i}-{e[0]}" for i, e in enumerate(EXAMPLES)])
def test_documented_example(name: str, options: str, line: str, expected: str) -> None:
    parser = build_parser(name, **(orjson.loads(options) if options else {}))
    assert parser.parse(line) == orjson.loads(expected)


@pytest.mark.parametrize("options,text,expected", MULTILINE)
def test_documented_multiline_example(options: str, text: str, expected: str) -> None:
    agg = build_multiline(**orjson.loads(options))
    events: list[str] = []
    for i, line in enumerate(text.split("\n")):
        events += agg.feed(line, i * 0.001)
    events += agg.close()
    assert events == orjson.loads(expected)


@pytest.mark.parametrize("name", sorted(load_builtins()))
def test_every_parser_is_documented_and_tested(name: str) -> None:
    assert re.search(rf"^## {name}$", DOC, re.M), f"docs/formats.md has no '## {name}' section"
    assert any(e[0] == name for e in EXAMPLES), f"docs/formats.md has no example for {name}"
    tests = "".join(p.read_text() for p in Path(__file__).parent.glob("test_formats_*.py")
                    if p.name != Path(__file__).name)
    assert f'build_parser("{name}"' in tests or f"parse_{name}" in tests, f"no test builds {name}"


def test_documented_agent_yaml_builds() -> None:
    import yaml

    blocks = re.findall(r"```yaml\n(.*?)\n```", DOC, re.S)
    assert blocks
    for block in blocks:
        for source in yaml.safe_load(block)["sources"].values():
            options = dict(source["parser"])
            parser = build_parser(options.pop("type"), **options)
            assert "parse_error" not in parser.parse(
                "2026-11-01 12:00:00.5 INFO started" if source["parser"]["type"] == "regex" else
                '1.2.3.4 - - [01/Nov/2026:12:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "-" "-" rt=0.001 '
                'urt="-" rid=ab trace="-"')
            if "multiline" in source:
                build_multiline(**source["multiline"])

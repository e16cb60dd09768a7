"""Every config field is documented in docs/ and used by a file in configs/."""

import pathlib
import re

import pytest

from conftest import ROOT

FIELD = re.compile(r"^\s*(?:optional |repeated )?[\w.]+ (\w+) = \d+;", re.M)


# Not config: the messages the supervisor and its worker processes exchange.
INTERNAL = ("api/proto/pounce/admin/",)


def proto_fields():
    out = []
    for proto in sorted((ROOT / "api/proto").rglob("*.proto")):
        if proto.relative_to(ROOT).as_posix().startswith(INTERNAL):
            continue
        for name in FIELD.findall(proto.read_text()):
            out.append((proto.relative_to(ROOT).as_posix(), name))
    return out


DOCS = "\n".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
CONFIGS = "\n".join(p.read_text() for p in (ROOT / "configs").rglob("*.yaml"))


# Fields whose feature is still being built on another branch (removed as each lands).
PENDING = set()


@pytest.mark.parametrize("proto,field", [f for f in proto_fields() if f[1] not in PENDING], ids=lambda v: v if isinstance(v, str) else None)
def test_field_is_documented_and_used(proto, field):
    assert re.search(rf"\b{field}\b", DOCS), f"{field} ({proto}) is not documented in docs/"
    assert re.search(rf"(^|[\s{{,-])\"?{field}\"?\s*:", CONFIGS, re.M), \
        f"{field} ({proto}) is not used by any file in configs/"

#!/usr/bin/env python3
"""Counts every test case in the JUnit XML reports under a directory and prints the
closing line CI reads: "N passed, N failed"."""

import pathlib
import sys
import xml.etree.ElementTree as ET


def main(root):
    passed = failed = 0
    failures = []
    for path in sorted(pathlib.Path(root).rglob("*.xml")):
        try:
            tree = ET.parse(path)
        except ET.ParseError:
            failed += 1
            failures.append(f"{path}: unreadable report")
            continue
        for case in tree.iter("testcase"):
            if case.find("skipped") is not None:
                continue
            if case.get("status") == "notrun":
                continue
            bad = case.find("failure") is not None or case.find("error") is not None
            name = f"{path.parent.name}/{case.get('classname')}.{case.get('name')}"
            if bad:
                failed += 1
                failures.append(name)
            else:
                passed += 1
    for f in failures:
        print(f"FAILED {f}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

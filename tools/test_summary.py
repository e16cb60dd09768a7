#!/usr/bin/env python3
"""Counts every test case in the JUnit XML reports under a directory and prints the
closing line CI reads: "N passed, N failed"."""

import pathlib
import sys
import xml.etree.ElementTree as ET


def main(root):
    passed = failed = 0
    failures = []
    # Targets that failed as a whole (crash or sanitizer report after their cases passed).
    for listing in sorted(pathlib.Path(root).rglob("failed_targets.txt")):
        for target in listing.read_text().split():
            report = pathlib.Path(listing.parent, target.lstrip("/").replace(":", "/").replace("test/", "", 1), "test.xml")
            bad_cases = 0
            if report.exists():
                try:
                    tree = ET.parse(report)
                    bad_cases = sum(1 for c in tree.iter("testcase")
                                    if c.find("failure") is not None or c.find("error") is not None)
                except ET.ParseError:
                    pass
            if bad_cases == 0:
                failed += 1
                failures.append(f"{listing.parent.name}/{target} (the test binary failed)")
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

"""Print one line, `N passed, N failed, N skipped`, over several pytest JUnit XML reports."""

import sys
import xml.etree.ElementTree as ET


def main(paths: list[str]) -> int:
    passed = failed = skipped = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()  # our own pytest output
        except (OSError, ET.ParseError):
            failed += 1  # a pytest process that wrote no report failed
            continue
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            bad = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            skip = int(suite.get("skipped", 0))
            passed += tests - bad - skip
            failed += bad
            skipped += skip
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

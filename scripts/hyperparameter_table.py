#!/usr/bin/env python3
"""Print the hyperparameter table of docs/sagemaker.md from the Hyperparameters dataclass, or rewrite it there.

    python scripts/hyperparameter_table.py           # print
    python scripts/hyperparameter_table.py --write   # replace the table under "## Hyperparameters" in docs/sagemaker.md
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from albert_ner.hyperparameters import describe_hyperparameters

TABLE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "sagemaker.md"
SECTION = re.compile(r"(^## Hyperparameters\n\n)(\|.*?\n)(?=\n)", re.S | re.M)


def table() -> str:
    rows = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for name, kind, default, doc in describe_hyperparameters():
        rows.append(f"| `{name}` | {kind} | `{json.dumps(default, ensure_ascii=False)}` | {doc} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    if "--write" not in sys.argv[1:]:
        print(table(), end="")
        return
    text = TABLE_PAGE.read_text(encoding="utf-8")
    if not SECTION.search(text):
        raise SystemExit(f"{TABLE_PAGE}: no table under '## Hyperparameters'")
    TABLE_PAGE.write_text(SECTION.sub(lambda match: match.group(1) + table(), text, count=1), encoding="utf-8")


if __name__ == "__main__":
    main()

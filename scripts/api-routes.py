#!/usr/bin/env python3
"""Print the route table of docs/api.md from docs/openapi.json (itself checked against the
server's route table by tests/unit/test-router.c). Usage: scripts/api-routes.py > table.md"""
import json
import sys

doc = json.load(open(sys.argv[1] if len(sys.argv) > 1 else "docs/openapi.json"))
print("| method | path | least role | what |")
print("|---|---|---|---|")
for path, item in doc["paths"].items():
    for method, op in item.items():
        print(f"| {method.upper()} | `{path}` | {op['x-atrium-role']} | {op['summary']} |")

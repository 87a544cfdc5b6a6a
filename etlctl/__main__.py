"""etlctl command line.

etlctl preview --offline --stack dev [--format tree|json|mermaid] [--preview-mode]
etlctl schema [--check]          the JSON Schema of Pulumi.<stack>.yaml files (docs/stack-config.schema.json)
etlctl stacks                    every stack file with its region and environment, as JSON (the CI matrix)
etlctl preview|up --stack dev    the real engine through the Automation API (needs the pulumi CLI and credentials)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from etlctl.stack_config import StackFileError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "stack-config.schema.json"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etlctl", description="Tooling for the etl-platform Pulumi program.")
    commands = parser.add_subparsers(dest="command", required=True)

    preview = commands.add_parser("preview", help="show what a stack would contain")
    preview.add_argument("--stack", "-s", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    preview.add_argument("--cwd", "-C", type=Path, default=None, help="project directory (default: this repo)")
    preview.add_argument(
        "--offline", action="store_true", help="evaluate under Pulumi's mock monitor: no cloud, no Pulumi CLI"
    )
    preview.add_argument("--format", choices=("tree", "json", "mermaid"), default="tree")
    preview.add_argument(
        "--preview-mode", action="store_true", help="offline: leave computed values unknown, as `pulumi preview` does"
    )

    up = commands.add_parser("up", help="deploy a stack with the Automation API (needs the pulumi CLI)")
    up.add_argument("--stack", "-s", required=True)
    up.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    schema = commands.add_parser("schema", help="print the JSON Schema of the stack files")
    schema.add_argument("--check", action="store_true", help=f"fail if {SCHEMA_PATH.name} is out of date")
    schema.add_argument("--write", action="store_true", help=f"write it to {SCHEMA_PATH}")

    stacks = commands.add_parser("stacks", help="every Pulumi.<stack>.yaml with its region and environment (JSON)")
    stacks.add_argument("--cwd", "-C", type=Path, default=None, help="project directory (default: this repo)")
    return parser


def _schema(check: bool, write: bool) -> int:
    from components.settings import json_schema

    text = json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
    if check:
        current = SCHEMA_PATH.read_text() if SCHEMA_PATH.exists() else ""
        if current != text:
            print(f"{SCHEMA_PATH} is out of date: run `etlctl schema --write`", file=sys.stderr)
            return 1
        return 0
    if write:
        SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
        SCHEMA_PATH.write_text(text)
        return 0
    sys.stdout.write(text)
    return 0


def _offline(stack: str, fmt: str, preview_mode: bool, project_dir: Path | None) -> int:
    from etlctl import offline

    try:
        evaluation = offline.evaluate(stack, preview=preview_mode, project_dir=project_dir or offline.PROJECT_DIR)
    except offline.ProgramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    renderer = {"tree": offline.render_tree, "json": offline.render_json, "mermaid": offline.render_mermaid}[fmt]
    print(renderer(evaluation))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            return _schema(args.check, args.write)
        if args.command == "stacks":
            from etlctl.offline import PROJECT_DIR
            from etlctl.stack_config import stack_matrix

            print(json.dumps(stack_matrix(args.cwd or PROJECT_DIR)))
            return 0
        if args.command == "preview" and args.offline:
            return _offline(args.stack, args.format, args.preview_mode, args.cwd)
        from etlctl import automation

        if args.command == "preview":
            return automation.preview(args.stack)
        return automation.up(args.stack, confirm=not args.yes)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `| head`
        sys.exit(0)

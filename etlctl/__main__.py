"""etlctl command line.

etlctl preview --offline --stack dev [--format tree|json|mermaid] [--preview-mode] [--architecture NAME] [--cwd DIR]
etlctl preview --stack dev [--format tree|json]        the real engine with the policy pack (Automation API)
etlctl up --stack dev [--yes] [--format tree|json]     deploy with the policy pack (Automation API)
etlctl schema [--check|--write]                        the JSON Schema of Pulumi.<stack>.yaml files
etlctl stacks [--cwd DIR]                              every stack file with its region and environment (CI matrix)
etlctl docs [--write]                                  check (or rewrite) the diagrams in docs/architectures/*.md
etlctl cost --stack dev [--format table|json|markdown] [--compare BASE]
                                                       monthly cost at rest and per run, from the offline preview

Exit codes: 0 done, 1 the program or the engine failed, 2 bad input (arguments, stack file), and for the engine
commands 5 policy violation, 6 no such stack in the backend, 8 declined, 75 concurrent update, 127 no pulumi CLI
(see `etlctl.automation`).
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

    preview = commands.add_parser("preview", help="show what a stack would contain, or what a deployment would change")
    preview.add_argument("--stack", "-s", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    preview.add_argument(
        "--cwd", "-C", type=Path, default=None, help="project directory whose code is evaluated (default: this repo)"
    )
    preview.add_argument(
        "--offline", action="store_true", help="evaluate under Pulumi's mock monitor: no cloud, no Pulumi CLI"
    )
    preview.add_argument(
        "--format",
        choices=("tree", "json", "mermaid"),
        default="tree",
        help="offline: tree, json or mermaid (data flow); engine: tree (the engine's text) or json (a summary)",
    )
    preview.add_argument(
        "--preview-mode", action="store_true", help="offline: leave computed values unknown, as `pulumi preview` does"
    )
    preview.add_argument(
        "--architecture", metavar="NAME", default=None, help="offline: show one architecture's part of the stack"
    )

    up = commands.add_parser("up", help="deploy a stack with the Automation API and the policy pack (needs the CLI)")
    up.add_argument("--stack", "-s", required=True)
    up.add_argument("--cwd", "-C", type=Path, default=None, help="project directory (default: this repo)")
    up.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    up.add_argument("--format", choices=("tree", "json"), default="tree", help="json: print a summary only")

    schema = commands.add_parser("schema", help="print the JSON Schema of the stack files")
    schema.add_argument("--check", action="store_true", help=f"fail if {SCHEMA_PATH.name} is out of date")
    schema.add_argument("--write", action="store_true", help=f"write it to {SCHEMA_PATH}")

    docs = commands.add_parser("docs", help="check the generated diagrams of docs/architectures/*.md, or rewrite them")
    docs.add_argument("--write", action="store_true", help="rewrite every stale diagram in place")

    cost = commands.add_parser("cost", help="monthly cost at rest and per run of a stack, from its offline preview")
    cost.add_argument("--stack", "-s", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    cost.add_argument("--cwd", "-C", type=Path, default=None, help="project directory (default: this repo)")
    cost.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    cost.add_argument(
        "--compare",
        metavar="BASE",
        default=None,
        help="print the delta from BASE: another stack file (path to a Pulumi.<stack>.yaml) or REV:Pulumi.<stack>.yaml "
        "(the whole tree at a git revision: code and stack file)",
    )
    cost.add_argument(
        "--stage-minutes", type=float, default=5.0, help="assumed minutes one stage task runs (default 5)"
    )
    cost.add_argument(
        "--price-region",
        default=None,
        help="price at another region's list prices (e.g. us-east-1, the issue's figures); default: the stack's region",
    )
    cost.add_argument("--data-mb", type=float, default=100.0, help="assumed data volume per run in MB (default 100)")

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


def _docs(write: bool, project_dir: Path) -> int:
    from etlctl import docs

    try:
        stale = docs.refresh(project_dir, write=write)
    except docs.PageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in stale:
        verb = "rewrote" if write else "stale:"
        print(f"{verb} {path.relative_to(project_dir)}", file=sys.stderr)
    if stale and not write:
        print(f"regenerate the diagrams: `{docs.REGENERATE}` (or `make docs`)", file=sys.stderr)
        return 1
    return 0


def _offline(args: argparse.Namespace, project_dir: Path) -> int:
    from etlctl import diagram, offline, render

    if args.format == "mermaid" and args.preview_mode:
        print(
            "error: the diagram is drawn from the ARNs the update-mode mocks resolve; drop --preview-mode",
            file=sys.stderr,
        )
        return 2
    try:
        evaluation = offline.evaluate(args.stack, preview=args.preview_mode, project_dir=project_dir)
    except offline.ProgramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    renderer = {"tree": render.render_tree, "json": render.render_json, "mermaid": diagram.render_mermaid}
    try:
        text = renderer[args.format](evaluation, args.architecture)
    except render.ScopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text + "\n")
    return 0


def _cost(args: argparse.Namespace, project_dir: Path) -> int:
    from etlctl import cost, offline

    if args.stage_minutes <= 0 or args.data_mb <= 0:
        print("error: --stage-minutes and --data-mb must be positive numbers, e.g. --stage-minutes 5", file=sys.stderr)
        return 2
    assumptions = cost.Assumptions(stage_minutes=args.stage_minutes, data_mb_per_run=args.data_mb)
    try:
        prices = cost.PriceTable.load(args.price_region) if args.price_region else None
        base = None
        if args.compare:
            with cost.stack_file_project(args.compare, project_dir) as (base_dir, base_stack):
                base = cost.estimate(offline.evaluate(base_stack, project_dir=base_dir), assumptions, prices)
        head = cost.estimate(offline.evaluate(args.stack, project_dir=project_dir), assumptions, prices)
    except cost.CostError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except offline.ProgramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(cost.render(head, args.format, base) + "\n")
    return 0


def _engine(args: argparse.Namespace, project_dir: Path) -> int:
    from etlctl import automation

    if args.command == "preview" and (args.format == "mermaid" or args.preview_mode or args.architecture):
        print("error: --format mermaid, --preview-mode and --architecture are for --offline", file=sys.stderr)
        return 2
    try:
        if args.command == "preview":
            return automation.preview(args.stack, fmt=args.format, project_dir=project_dir)
        return automation.up(args.stack, confirm=not args.yes, fmt=args.format, project_dir=project_dir)
    except automation.EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "schema":
            return _schema(args.check, args.write)
        from etlctl.offline import PROJECT_DIR

        if args.command == "stacks":
            from etlctl.stack_config import stack_matrix

            print(json.dumps(stack_matrix(args.cwd or PROJECT_DIR)))
            return 0

        if args.command == "docs":
            return _docs(args.write, PROJECT_DIR)

        project_dir = (args.cwd or PROJECT_DIR).resolve()
        if args.command == "cost":
            return _cost(args, project_dir)
        if args.command == "preview" and args.offline:
            return _offline(args, project_dir)
        return _engine(args, project_dir)
    except StackFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # e.g. `| head`
        sys.exit(0)

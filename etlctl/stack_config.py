"""Read a stack's config the way the Pulumi CLI hands it to the program: project defaults, then the stack file.

The CLI parses `Pulumi.yaml` and `Pulumi.<stack>.yaml` with Go's yaml.v3, and this reader follows it:
- YAML 1.2 core-schema scalars: only `true`/`false`, `null`/`~`, decimal, `0o` octal and `0x` hex integers and
  floats are typed; `yes`, `on`, `2024-01-01` and `017` stay text (PyYAML's YAML 1.1 would turn them into booleans,
  dates and octal);
- a key given twice in one mapping is an error (the CLI refuses the file, where YAML 1.1 readers keep the last);
- `config` is a mapping whose keys are `<namespace>:<name>`; in `Pulumi.yaml` a key without namespace belongs to the
  project. (The CLI still reads the old `<namespace>:config:<name>` form; this reader and the JSON Schema refuse it
  with the key to write instead, so that each key has one spelling.)

Values become what the engine passes: a top-level scalar as its text (`true`, `365`), lists and objects as JSON,
an empty value as "". `secure:` values (anywhere in a value) make the key secret: the value is replaced by a
placeholder and the key reported in `secret_keys`, so offline evaluation never needs the secrets provider.

Problems are collected, not raised one at a time: `read_stack()` returns what could be read and one line per problem
(`Pulumi.dev.yaml:12: <key as written>: <value>: <what is allowed>`); `load_stack_config()` raises them together with
whatever the settings loader finds in the readable part, so one run reports every mistake of the file.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from components import yaml_core

SECRET_PLACEHOLDER = "offline-secret-placeholder"
STACK_FILE_KEYS = ("config", "secretsprovider", "encryptedkey", "encryptionsalt", "environment")
"""Top-level keys of a stack file: config, the secrets provider's settings, Pulumi ESC environments."""


class StackFileError(Exception):
    """The project or stack file cannot be read as Pulumi reads it; `lines` holds one line per problem."""

    def __init__(self, stack: str, lines: list[str], *, summary: str | None = None) -> None:
        from components.settings import format_problems

        self.stack = stack
        self.lines = lines
        super().__init__(summary or format_problems(stack, lines))


@dataclasses.dataclass(frozen=True)
class StackConfig:
    project: str
    stack: str
    values: dict[str, str]
    secret_keys: list[str]
    readable: bool = True
    """False when a file could not be parsed at all, so `values` says nothing about what the stack sets."""

    @property
    def region(self) -> str | None:
        return self.values.get("aws:region")

    @property
    def environment(self) -> str | None:
        """The stack's `environment` setting (the profile), as written."""
        return self.values.get(f"{self.project}:environment")


# ---------------------------------------------------------------------------------------------------------------------
# YAML 1.2 core schema
# ---------------------------------------------------------------------------------------------------------------------


class _Resolver(yaml.resolver.Resolver):
    """Implicit tags of the YAML 1.2 core schema (plus `<<` merge keys, which yaml.v3 also honours)."""


_Resolver.yaml_implicit_resolvers = {}
for _kind, (_pattern, _first) in {**yaml_core.IMPLICIT, "merge": (re.compile(r"^(?:<<)$"), ["<"])}.items():
    _Resolver.add_implicit_resolver(f"tag:yaml.org,2002:{_kind}", _pattern, _first)


class _Composer(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Resolver):
    """Parses to a node tree (with line numbers); values are built from it by `_Builder`."""

    def __init__(self, text: str) -> None:
        yaml.reader.Reader.__init__(self, text)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


def _scalar(node: yaml.ScalarNode) -> Any:
    """The value of a scalar under the core schema (explicit `!!str` etc. tags included)."""
    kind = node.tag.removeprefix("tag:yaml.org,2002:")
    if kind not in ("null", "bool", "int", "float", "str"):
        raise _NotData(f"the tag {node.tag} is not plain data")
    return yaml_core.construct(kind, node.value)


class _NotData(Exception):
    """A node this reader (like Pulumi) cannot turn into JSON-like data."""


class _Builder:
    """Builds JSON-like values from nodes, recording duplicate keys and other problems with their line."""

    def __init__(self, file: str) -> None:
        self.file = file
        self._lines: list[tuple[int, str]] = []
        self._active: set[int] = set()

    def problem(self, node: yaml.Node, text: str) -> None:
        line = f"{self.file}:{node.start_mark.line + 1}: {text}".replace("\n", "\\n")  # one line per problem
        self._lines.append((node.start_mark.line + 1, line))

    def sorted_problems(self) -> list[str]:
        return [text for _, text in sorted(self._lines, key=lambda item: item[0])]

    def value(self, node: yaml.Node, where: str) -> Any:
        if id(node) in self._active:
            self.problem(node, f"{where}: an alias refers to itself; write the value out")
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.ScalarNode):
                try:
                    return _scalar(node)
                except (_NotData, ValueError) as exc:
                    self.problem(
                        node, f"{where}: {node.value!r}: {exc}; write it as plain text, a number or true/false"
                    )
                    return None
            if isinstance(node, yaml.SequenceNode):
                return [self.value(item, f"{where}[{index}]") for index, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self.mapping(node, where)
        finally:
            self._active.discard(id(node))

    def pairs(self, node: yaml.MappingNode, where: str) -> list[tuple[yaml.Node, yaml.Node]]:
        """The mapping's key/value nodes with `<<` merges applied (explicit keys win) and duplicates reported."""
        explicit: dict[str, yaml.Node] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key, value in node.value:
            if key.tag == "tag:yaml.org,2002:merge":
                sources = value.value if isinstance(value, yaml.SequenceNode) else [value]
                for source in sources:
                    if isinstance(source, yaml.MappingNode):
                        merged += self.pairs(source, where)
                    else:
                        self.problem(value, f"{where}: '<<' merges a mapping (or a list of mappings)")
                continue
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name is not None and name in explicit:
                first = explicit[name].start_mark.line + 1
                self.problem(
                    key, f"{self._join(where, name)}: given twice (first on line {first}); Pulumi refuses the file"
                )
                continue
            if name is not None:
                explicit[name] = key
            own.append((key, value))
        kept = [(k, v) for k, v in merged if not (isinstance(k, yaml.ScalarNode) and k.value in explicit)]
        return kept + own

    @staticmethod
    def _join(where: str, name: str) -> str:
        shown = name if name.isprintable() else repr(name)
        return f"{where}.{shown}" if where else shown

    def mapping(self, node: yaml.MappingNode, where: str) -> dict[str, Any]:
        built: dict[str, Any] = {}
        for key, value in self.pairs(node, where):
            if not isinstance(key, yaml.ScalarNode) or not isinstance(self.value(key, where), str):
                shown = key.value if isinstance(key, yaml.ScalarNode) else "a collection"
                self.problem(
                    key, f"{where or 'top level'}: the key {shown!r} is not text; quote it, e.g. '\"{shown}\"'"
                )
                continue
            built[key.value] = self.value(value, self._join(where, key.value))
        return built


def _parse(path: Path) -> tuple[yaml.Node | None, list[str]]:
    """The file's node tree, or the one syntax problem that stops reading it."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # Pulumi strips a UTF-8 byte-order mark
    except UnicodeDecodeError as exc:
        return None, [f"{path.name}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
    try:
        composer = _Composer(text)
        try:
            return composer.get_single_node(), []
        finally:
            composer.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        reason = " ".join(part for part in (exc.context, exc.problem) if part)
        return None, [f"{path.name}{line}: not valid YAML: {reason}"]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow in a file
        number = text.count("\n", 0, exc.position) + 1
        found: Any = exc.character
        shown = found if isinstance(found, str) else chr(found)
        return None, [f"{path.name}:{number}: not valid YAML: the character {shown!r} is not allowed in YAML"]
    except RecursionError:
        return None, [f"{path.name}: not valid YAML: nested too deeply to read"]


# ---------------------------------------------------------------------------------------------------------------------
# Config keys and values
# ---------------------------------------------------------------------------------------------------------------------


def parse_key(text: str) -> tuple[str, str] | None:
    """`<namespace>:<name>` -> (namespace, name); None otherwise."""
    parts = text.split(":")
    return (parts[0], parts[1]) if len(parts) == 2 and all(parts) else None


def _has_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_has_secret(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_secret(item) for item in value)
    return False


def _not_json(value: Any) -> str | None:
    """Why a value cannot travel as JSON (infinities and NaN), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a number JSON can carry"
    if isinstance(value, dict):
        return next((why for item in value.values() if (why := _not_json(item))), None)
    if isinstance(value, list):
        return next((why for item in value if (why := _not_json(item))), None)
    return None


def _engine_value(node: yaml.Node, value: Any) -> str:
    """What the engine hands the program for a scalar: its text as written (`365`, `true`), empty for null."""
    return "" if value is None or not isinstance(node, yaml.ScalarNode) else node.value


@dataclasses.dataclass
class _Read:
    values: dict[str, str] = dataclasses.field(default_factory=dict)
    secret_keys: set[str] = dataclasses.field(default_factory=set)
    problems: list[str] = dataclasses.field(default_factory=list)


def _read_config(
    builder: _Builder, node: yaml.Node | None, *, project: str, stack_file: bool, read: _Read, project_keys: set[str]
) -> None:
    """Read one `config:` mapping into `read` (later files override earlier keys, as the engine merges them)."""
    if node is None or (isinstance(node, yaml.ScalarNode) and _scalar(node) is None):
        return
    if not isinstance(node, yaml.MappingNode):
        kind = "a list" if isinstance(node, yaml.SequenceNode) else f"{node.value!r}"
        builder.problem(node, f"config: must be a mapping of '<namespace>:<name>: value' lines, not {kind}")
        return
    for key_node, value_node in builder.pairs(node, ""):
        written = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
        parsed = parse_key(written) if isinstance(key_node, yaml.ScalarNode) else None
        if parsed is None and not stack_file and isinstance(key_node, yaml.ScalarNode) and ":" not in written:
            parsed = (project, written)  # a project-level key without namespace is the project's
        if parsed is None:
            parts = written.split(":")
            if len(parts) == 3 and parts[1] == "config":
                hint = f"the old '<namespace>:config:<name>' form: write '{parts[0]}:{parts[2]}'"
            elif ":" not in written and written in project_keys:
                hint = f"write '{project}:{written}'"
            else:
                hint = f"e.g. '{project}:environment'"
            builder.problem(key_node, f"{written}: not a config key; keys are '<namespace>:<name>', {hint}")
            continue
        key = ":".join(parsed)
        value = builder.value(value_node, key)
        if not stack_file and isinstance(value, dict) and not _has_secret(value):
            # Pulumi.yaml declares a key: `value` is what every stack gets, `default` what stacks get unless set.
            if "value" not in value and "default" not in value:
                continue
            value = value.get("value", value.get("default"))
            text = value if isinstance(value, str) else json.dumps(value)
        elif isinstance(value, dict | list):
            text = json.dumps(value)
        else:
            text = _engine_value(value_node, value)
        if why := _not_json(value):
            builder.problem(value_node, f"{key}: {why}")
            continue
        secret = _has_secret(value)
        read.values[key] = SECRET_PLACEHOLDER if secret else text
        if secret:
            read.secret_keys.add(key)
        else:
            read.secret_keys.discard(key)  # a stack value replaces a secret project default


def _stack_file(builder: _Builder, root: yaml.Node | None) -> yaml.Node | None:
    """The stack file's `config` node, after checking the top level."""
    if root is None:
        return None
    if not isinstance(root, yaml.MappingNode):
        builder.problem(root, "the file must be a mapping with a 'config:' key at the top level")
        return None
    config: yaml.Node | None = None
    for key_node, value_node in builder.pairs(root, ""):
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else "a collection"
        if name == "config":
            config = value_node
        elif name not in STACK_FILE_KEYS:
            close = difflib.get_close_matches(name, STACK_FILE_KEYS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            builder.problem(
                key_node, f"{name}: not a stack file key.{hint} Allowed at the top level: {', '.join(STACK_FILE_KEYS)}"
            )
        elif name == "environment":
            value = builder.value(value_node, name)
            if not (isinstance(value, list) and all(isinstance(item, str) for item in value)):
                builder.problem(
                    value_node,
                    "environment: at the top level this imports Pulumi ESC environments (a list of names); "
                    "the profile is 'etl-platform:environment' under config",
                )
        elif not isinstance(builder.value(value_node, name), str):
            builder.problem(value_node, f"{name}: must be text")
    return config


def read_document(path: Path) -> tuple[Any, list[str]]:
    """A whole YAML file as plain data, read as Pulumi reads it, and its problems (syntax, duplicate keys, ...)."""
    root, problems = _parse(path)
    if root is None:
        return None, problems
    builder = _Builder(path.name)
    data = builder.value(root, "")
    return data, problems + builder.sorted_problems()


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in project_dir.glob("Pulumi.*.yaml"))


def read_stack(project_dir: Path, stack: str) -> tuple[StackConfig, list[str]]:
    """The stack's config as far as it can be read, and one line per problem of the project or stack file.

    Raises `StackFileError` only when a file is missing."""
    project_path, stack_path = project_dir / "Pulumi.yaml", project_dir / f"Pulumi.{stack}.yaml"
    if not project_path.is_file():
        raise StackFileError(stack, [], summary=f"Pulumi.yaml not found in {project_dir}")
    if not stack_path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise StackFileError(
            stack, [], summary=f"no stack file {stack_path.name} in {project_dir}; stacks here: {known}"
        )

    read = _Read()
    project_builder = _Builder(project_path.name)
    project_root, syntax = _parse(project_path)
    read.problems += syntax
    readable = not syntax
    project, declared = "", None
    if isinstance(project_root, yaml.MappingNode):
        top = {k.value: v for k, v in project_builder.pairs(project_root, "") if isinstance(k, yaml.ScalarNode)}
        name = project_builder.value(top["name"], "name") if "name" in top else None
        project = str(name or "")
        declared = top.get("config")
    project_keys = set()
    if isinstance(declared, yaml.MappingNode):
        project_keys = {k.value for k, _ in declared.value if isinstance(k, yaml.ScalarNode)}
    _read_config(project_builder, declared, project=project, stack_file=False, read=read, project_keys=project_keys)

    stack_builder = _Builder(stack_path.name)
    stack_root, syntax = _parse(stack_path)
    read.problems += syntax
    readable = readable and not syntax
    config_node = _stack_file(stack_builder, stack_root)
    _read_config(stack_builder, config_node, project=project, stack_file=True, read=read, project_keys=project_keys)
    read.problems += project_builder.sorted_problems() + stack_builder.sorted_problems()
    config = StackConfig(
        project=project, stack=stack, values=read.values, secret_keys=sorted(read.secret_keys), readable=readable
    )
    return config, read.problems


def load_stack_config(project_dir: Path, stack: str) -> StackConfig:
    """The stack's config, or `StackFileError` listing every problem of the files and of the settings they hold."""
    config, problems = read_stack(project_dir, stack)
    if problems:
        raise StackFileError(stack, problems + _settings_problems(config))
    return config


def _settings_problems(config: StackConfig) -> list[str]:
    """What the settings loader finds in what could be read (nothing to say when a file did not parse)."""
    from components.settings import config_problems

    if not config.readable:
        return []
    return config_problems(config.values, project=config.project, stack=config.stack, secret_keys=config.secret_keys)


def variable_suffix(name: str) -> str:
    """`dev-eu` -> `DEV_EU`: the suffix of a GitHub Actions variable named after a stack or environment."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def stack_matrix(project_dir: Path) -> list[dict[str, str]]:
    """Every `Pulumi.<stack>.yaml` as a CI matrix entry: stack, region, environment and the suffixes of the
    repository variables that may name its preview role. A file with any problem raises `StackFileError`."""
    entries = []
    for stack in available_stacks(project_dir):
        config, problems = read_stack(project_dir, stack)
        problems += _settings_problems(config)
        if problems:
            raise StackFileError(stack, problems)
        environment = config.environment or ""
        entries.append(
            {
                "stack": stack,
                "region": config.region or "",
                "environment": environment,
                "stackVariable": variable_suffix(stack),
                "environmentVariable": variable_suffix(environment),
            }
        )
    return entries

"""The offline preview's output can be diffed: the same input renders the same bytes in separate processes; unknowns,
assets and numbers are shown stably; the diagram draws data flow per component; `--architecture` narrows it;
`--cwd` evaluates the target's code; and no event loop is left for the interpreter to finalize at exit."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from etlctl import diagram, render
from etlctl.offline import evaluate
from tests.support.etlctl_cli import etlctl
from tests.support.stacks import ROOT, evaluate_config, evaluated

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# ---------------------------------------------------------------------------------------------------------------------
# Byte-identical across processes (each with its own hash seed and its own RPC thread timing)
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("--stack", "dev", "--format", "tree"),
        ("--stack", "prod", "--format", "json", "--preview-mode"),
        ("--stack", "dev", "--format", "mermaid"),
    ],
    ids=["tree", "json-preview-mode", "mermaid"],
)
def test_the_same_stack_renders_the_same_bytes_in_two_processes(args: tuple[str, ...]) -> None:
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: etlctl("preview", "--offline", *args), range(2))
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert first.stdout == second.stdout
    assert len(first.stdout) > 1000


# ---------------------------------------------------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------------------------------------------------


def _walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _walk(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _walk(item)]
    return [value]


def _registration(payload: dict[str, Any], suffix: str) -> dict[str, Any]:
    (found,) = [r for r in payload["registrations"] if r["name"].endswith(suffix)]
    return found


def test_unknowns_are_one_stable_marker_and_no_object_repr_leaks() -> None:
    text = render.render_json(evaluated("prod", preview=True))
    assert re.search(r"object at 0x[0-9a-f]+", text) is None
    assert "<pulumi." not in text
    payload = json.loads(text)
    # The bucket policy is rendered from the bucket's ARN: unknown until the bucket exists.
    assert _registration(payload, "lake-raw-policy")["inputs"]["policy"] == render.UNKNOWN
    assert _registration(payload, "lake-raw")["inputs"]["forceDestroy"] is False, "known inputs stay as they are"


def test_assets_show_their_path_and_the_hash_of_their_content() -> None:
    payload = json.loads(render.render_json(evaluated("dev")))
    code = _registration(payload, "serverless-extract-function")["inputs"]["code"]
    assert code["archive"] == "file"
    path = Path(code["path"])
    assert not path.is_absolute() or not path.is_relative_to(ROOT), "inside the project, the path is relative"
    on_disk = path if path.is_absolute() else ROOT / path
    assert code["sha256"] == hashlib.sha256(on_disk.read_bytes()).hexdigest()
    layer = _registration(payload, "serverless-layer-zip")["inputs"]["source"]
    # A placeholder text until `make layers` has built the zip on this machine; then the zip file.
    assert set(layer) == ({"asset", "sha256"} if layer["asset"] == "string" else {"asset", "path", "sha256"})


def test_whole_numbers_are_integers() -> None:
    payload = json.loads(render.render_json(evaluated("prod")))
    assert not [leaf for leaf in _walk(payload) if isinstance(leaf, float) and leaf.is_integer()]
    dlq = _registration(payload, "serverless-work-dlq")["inputs"]
    assert dlq["messageRetentionSeconds"] == 1209600 and isinstance(dlq["messageRetentionSeconds"], int)


def test_the_tree_names_the_image_by_its_package() -> None:
    tree = render.render_tree(evaluated("dev"))
    assert "docker:Image 1" in tree and "index:Image" not in tree


# ---------------------------------------------------------------------------------------------------------------------
# The diagram
# ---------------------------------------------------------------------------------------------------------------------

NODE = re.compile(r'^\s*(r_\w+)(?:\[\(|\(\[|\[\[|\[/|\{\{|\(|\[|>)"([^"]*)"')
EDGE = re.compile(r"^\s*(r_\w+) -->\|([^|]+)\| (r_\w+)$")
SUBGRAPH = re.compile(r'^\s*subgraph (c_\w+)\["([^"]*)"\]$')


def parse(mermaid: str) -> dict[str, Any]:
    """Nodes (id -> label and enclosing subgraph titles), edges and subgraphs of a rendered diagram."""
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    nodes: dict[str, tuple[str, tuple[str, ...]]] = {}
    edges: list[tuple[str, str, str]] = []
    stack: list[str] = []
    subgraphs: list[str] = []
    for line in lines[1:]:
        if match := SUBGRAPH.match(line):
            stack.append(match.group(2))
            subgraphs.append(match.group(1))
        elif line.strip() == "end":
            stack.pop()
        elif match := EDGE.match(line):
            edges.append((match.group(1), match.group(2), match.group(3)))
        elif match := NODE.match(line):
            assert match.group(1) not in nodes, f"node {match.group(1)} declared twice"
            nodes[match.group(1)] = (match.group(2), tuple(stack))
        else:
            raise AssertionError(f"unexpected line: {line!r}")
    assert stack == [], "every subgraph is closed"
    assert len(subgraphs) == len(set(subgraphs)), "subgraph ids are unique"
    return {"nodes": nodes, "edges": edges, "subgraphs": subgraphs}


def _node(nodes: dict[str, Any], resource_name: str) -> str:
    node_id = "r_" + re.sub(r"[^A-Za-z0-9]+", "_", resource_name)
    assert node_id in nodes, f"{resource_name} is not in the diagram"
    return node_id


def _flows(graph: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(source, verb, target) for source, verbs, target in graph["edges"] for verb in verbs.split(", ")}


def test_the_diagram_draws_the_dev_pipelines_data_flow() -> None:
    graph = parse(diagram.render_mermaid(evaluated("dev")))
    nodes, flows = graph["nodes"], _flows(graph)
    schedule = _node(nodes, "etl-platform-serverless-schedule")
    extract = _node(nodes, "etl-platform-serverless-extract-function")
    work = _node(nodes, "etl-platform-serverless-work")
    process = _node(nodes, "etl-platform-serverless-process-function")
    raw = _node(nodes, "etl-platform-lake-raw")
    rule = _node(nodes, "etl-platform-serverless-file-drops")
    assert {
        (schedule, "invokes", extract),
        (extract, "writes", work),
        (work, "triggers", process),
        (raw, "events", rule),
        (rule, "invokes", extract),
    } <= flows
    machine = _node(nodes, "etl-platform-stepfunctions-machine")
    for stage in ("extract", "load"):  # dev runs extract and load on the serverless Lambdas
        assert (machine, "invokes", _node(nodes, f"etl-platform-serverless-stage-{stage}-function")) in flows
    # ... transform and validate as SQL in Aurora, after the migrations, from functions inside the VPC.
    cluster = _node(nodes, "etl-platform-database-cluster")
    for label in ("migrate", "transform", "validate"):
        function = _node(nodes, f"etl-platform-database-{label}-function")
        assert {(machine, "invokes", function), (function, "reads", cluster), (function, "writes", cluster)} <= flows
    assert (_node(nodes, "etl-platform-database-transform-function"), "reads", raw) in flows


def test_the_diagram_holds_data_flow_only_with_short_labels_grouped_by_component() -> None:
    evaluation = evaluated("prod")
    graph = parse(diagram.render_mermaid(evaluation))
    nodes, edges = graph["nodes"], graph["edges"]
    assert edges, "the stack has data flow"
    for source, verbs, target in edges:
        assert source in nodes and target in nodes
        assert set(verbs.split(", ")) <= set(diagram.VERBS)
    pairs = {(source, target) for source, _, target in edges}
    assert [pair for pair in pairs if pair[::-1] in pairs] == [], "no pair of nodes points both ways"
    # Neither the key nor anything of monitoring but the alerts topic is a node: they are not data flow.
    names = {r.name: r.type for r in evaluation.registrations}
    for node_id in nodes:
        resource = next(name for name in names if "r_" + re.sub(r"[^A-Za-z0-9]+", "_", name) == node_id)
        assert names[resource] in diagram._KIND, f"{resource} ({names[resource]}) is not a data-flow resource"
    assert all(len(label) <= 24 for label, _ in nodes.values())
    assert all(groups for _, groups in nodes.values()), "every node sits in its component's subgraph"
    top = {groups[0] for _, groups in nodes.values()}
    assert {"foundation", "serverless", "containers", "stepfunctions"} <= top


def test_one_architectures_view_keeps_its_nodes_and_what_they_touch() -> None:
    evaluation = evaluated("prod")
    whole = _flows(parse(diagram.render_mermaid(evaluation)))
    view = parse(diagram.render_mermaid(evaluation, "containers"))
    flows = _flows(view)
    assert flows and flows < whole
    for source, _, target in flows:
        inside = [view["nodes"][n][1][0] == "containers" for n in (source, target)]
        assert any(inside), f"{source} -> {target} does not touch the containers architecture"
    assert "serverless" not in {groups[0] for _, groups in view["nodes"].values()}
    # prod runs the load on containers: the stepfunctions machine invokes its task.
    assert {groups[0] for _, groups in view["nodes"].values()} == {"containers", "foundation", "stepfunctions"}


def test_an_architecture_the_stack_does_not_build_is_refused_with_what_it_builds(tmp_path: Path) -> None:
    result = etlctl("preview", "--offline", "--stack", "staging", "--format", "mermaid", "--architecture", "nosuch")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: stack staging does not build the architecture 'nosuch'; it builds: containers, database, emr, glue, "
        "serverless, stepfunctions, streaming"
    )
    assert result.stdout == ""
    small = evaluate_config(
        tmp_path,
        {"aws:region": "eu-west-1", "etl-platform:environment": "dev", "etl-platform:architectures": ["serverless"]},
    )
    with pytest.raises(render.ScopeError, match=r"it builds: serverless$"):
        render.scope(small, "emr")


def test_the_tree_of_one_architecture_holds_only_its_components() -> None:
    tree = render.render_tree(evaluated("dev"), "stepfunctions")
    assert tree.startswith("architecture stepfunctions of stack dev of etl-platform")
    assert "[etl:architectures:StepFunctions]" in tree
    assert "etl:foundation" not in tree and "etl:architectures:Serverless" not in tree


# ---------------------------------------------------------------------------------------------------------------------
# --cwd and the shutdown path
# ---------------------------------------------------------------------------------------------------------------------


def test_cwd_evaluates_the_target_directorys_code(tmp_path: Path) -> None:
    """A checkout whose data lake has another component type: the preview shows the checkout's, run from ROOT."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("components", "etl_jobs", "containers"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=ignore)
    for name in ("__main__.py", "Pulumi.yaml", "Pulumi.staging.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    lake = tmp_path / "components" / "foundation" / "data_lake.py"
    assert "etl:foundation:DataLake" in lake.read_text()
    lake.write_text(lake.read_text().replace("etl:foundation:DataLake", "etl:foundation:CheckoutLake"))

    result = etlctl("preview", "--offline", "--stack", "staging", "--cwd", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "[etl:foundation:CheckoutLake]" in result.stdout
    assert "[etl:foundation:DataLake]" not in result.stdout


def test_a_preview_leaves_no_event_loop_to_be_finalized_at_exit() -> None:
    """Python's dev mode warns for every loop finalized unclosed: the warning appears on every such run, while the
    'Invalid file descriptor: -1' traceback it can turn into depends on the collector's order."""
    result = etlctl("preview", "--offline", "--stack", "staging", env={"PYTHONDEVMODE": "1"})
    assert result.returncode == 0, result.stderr
    assert "unclosed event loop" not in result.stderr
    assert "Traceback" not in result.stderr and "Exception ignored" not in result.stderr


def test_evaluate_closes_every_event_loop_it_opened(tmp_path: Path) -> None:
    def open_loops() -> set[int]:
        gc.collect()
        return {id(o) for o in gc.get_objects() if isinstance(o, asyncio.BaseEventLoop) and not o.is_closed()}

    before = open_loops()
    evaluation = evaluate("staging", project_dir=ROOT)
    assert evaluation.resources
    assert open_loops() - before == set()


def test_options_that_do_not_apply_are_refused_before_anything_runs(tmp_path: Path) -> None:
    diagram_in_preview = etlctl("preview", "--offline", "--stack", "dev", "--format", "mermaid", "--preview-mode")
    assert diagram_in_preview.returncode == 2
    assert diagram_in_preview.stderr == (
        "error: the diagram is drawn from the ARNs the update-mode mocks resolve; drop --preview-mode\n"
    )
    empty = tmp_path / "bin"
    empty.mkdir()
    engine_diagram = etlctl("preview", "--stack", "dev", "--format", "mermaid", env={"PATH": str(empty)})
    assert engine_diagram.returncode == 2
    assert engine_diagram.stderr == "error: --format mermaid, --preview-mode and --architecture are for --offline\n"

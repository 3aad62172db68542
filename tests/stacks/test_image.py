"""The receiver's image: its Dockerfile, its build context, and the pins its dependencies install from."""

from __future__ import annotations

import ast
import json
import re
import sys
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stacks.service import CONTAINER_PORT, HEALTH_COMMAND
from tests.stacks.synth import PREBUILT_IMAGE, RECEIVER, REPO, Assembly

DOCKERFILE = (REPO / "receiver" / "Dockerfile").read_text()


def instructions(keyword: str) -> list[str]:
    """The arguments of every ``keyword`` instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.split(None, 1)[:1] == [keyword]]


def test_base_image_is_a_slim_python_311_argument() -> None:
    assert instructions("ARG")[0] == "BASE_IMAGE=python:3.11-slim"
    assert instructions("FROM") == ["${BASE_IMAGE} AS dependencies", "dependencies AS extension", "${BASE_IMAGE}"]


def test_image_runs_as_a_non_root_user() -> None:
    assert instructions("USER") == ["10001:10001"]


def test_entrypoint_is_exec_form_serve() -> None:
    # Exec form: python is PID 1 and receives ECS's SIGTERM itself (no shell in between).
    assert [json.loads(e) for e in instructions("ENTRYPOINT")] == [["python", "-m", "receiver", "serve"]]


def test_docker_health_check_is_the_task_definitions_healthz_check() -> None:
    (healthcheck,) = instructions("HEALTHCHECK")
    command = json.loads(healthcheck.split("CMD", 1)[1])
    assert command == ["python", "-c", HEALTH_COMMAND]


def test_image_exposes_the_receiver_port() -> None:
    assert instructions("EXPOSE") == [str(CONTAINER_PORT)]


def test_dependencies_are_the_runtime_ones_pinned_by_the_lock() -> None:
    (install,) = [run for run in instructions("RUN") if "pip install" in run and "runtime.txt" in run]
    assert "['project']['dependencies']" in install
    assert "-r runtime.txt -c requirements.lock" in install
    assert "--only-binary=:all:" in install


def stage(number: int) -> str:
    """The Dockerfile's ``number``-th build stage (0: the first; -1: the image itself)."""
    return re.split(r"^FROM ", DOCKERFILE, flags=re.MULTILINE)[1:][number]


def test_the_compiled_decoder_is_built_in_a_stage_of_its_own_with_the_locked_cython() -> None:
    extension = stage(1)
    assert "apt-get install" in extension and "gcc" in extension
    assert "grep -i '^cython==' ../requirements.lock" in extension
    assert "setup.py --quiet build_ext --inplace" in extension
    lock = (REPO / "requirements.lock").read_text().lower().splitlines()
    assert any(line.startswith("cython==") for line in lock)


def test_the_image_ships_the_built_decoder_and_no_compiler() -> None:
    image = stage(-1)
    assert "apt-get" not in image and "gcc" not in image
    assert "COPY --from=extension /build/extension/receiver/formats/_decode.*.so receiver/formats/" in image
    # The build fails unless the image's receiver runs the compiled decoder.
    assert "assert otel.DECODER == 'compiled'" in image


def test_build_context_holds_only_what_the_image_needs(default: Assembly) -> None:
    (image,) = default.assets(RECEIVER)["dockerImages"].values()
    context = default.directory / image["source"]["directory"]
    assert sorted(p.name for p in context.iterdir()) == [
        ".dockerignore",
        "alarms",
        "pyproject.toml",
        "receiver",
        "requirements.lock",
        "rules",
        "setup.py",
    ]
    assert [p for p in context.rglob("*") if p.name == "__pycache__" or p.suffix == ".pyc"] == []
    # The decoder is compiled in the image, never taken from the host's build.
    assert [p for p in context.rglob("*") if p.suffix in (".so", ".c")] == []


def test_build_context_carries_the_dashboard_files_and_rule_packs(default: Assembly) -> None:
    (image,) = default.assets(RECEIVER)["dockerImages"].values()
    context = default.directory / image["source"]["directory"]
    assert (context / "receiver" / "views" / "static" / "index.html").is_file()
    assert list((context / "rules").rglob("*.yaml")) != []


def runtime_closure() -> set[str]:
    """pyproject's [project] dependencies and everything they require, as distribution names."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    needed: set[str] = set()
    pending = [Requirement(text) for text in pyproject["project"]["dependencies"]]
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        if name in needed or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
            continue
        needed.add(name)
        pending.extend(Requirement(text) for text in metadata.requires(name) or [])
    return needed


def test_lock_pins_every_runtime_dependency_and_what_they_need() -> None:
    # The image installs pyproject's [project] dependencies constrained by requirements.lock:
    # a package missing from the lock would be installed at whatever version is newest that day.
    pinned = {
        canonicalize_name(line.split("==")[0])
        for line in (REPO / "requirements.lock").read_text().splitlines()
        if "==" in line
    }
    assert sorted(runtime_closure() - pinned) == []


def test_everything_the_receiver_imports_is_installed_in_the_image() -> None:
    modules: set[str] = set()
    for path in (REPO / "receiver").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    # receiver_tools is the repository's own and left out of the image on purpose: the receiver imports
    # it only when a tool command runs (tests/test_import_boundaries.py), never to serve.
    third_party = modules - set(sys.stdlib_module_names) - {"receiver", "receiver_tools", "__future__"}
    providers = metadata.packages_distributions()
    installed = runtime_closure()
    missing = {m for m in third_party if not {canonicalize_name(d) for d in providers.get(m, [])} & installed}
    assert sorted(missing) == []


def test_dockerignore_is_an_allow_list() -> None:
    lines = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {line for line in lines if line.startswith("!")} == {
        "!receiver",
        "!rules",
        "!alarms",
        "!pyproject.toml",
        "!requirements.lock",
        "!setup.py",
    }


def test_a_prebuilt_image_is_run_as_given_and_nothing_is_built(prebuilt_image: Assembly) -> None:
    assert prebuilt_image.assets(RECEIVER).get("dockerImages", {}) == {}
    resources = prebuilt_image.template(RECEIVER)["Resources"]
    (task,) = [r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    (container,) = task["Properties"]["ContainerDefinitions"]
    registry, path = PREBUILT_IMAGE.removesuffix(".amazonaws.com").split(".amazonaws.com/")
    assert container["Image"] == {"Fn::Join": ["", [f"{registry}.", {"Ref": "AWS::URLSuffix"}, f"/{path}"]]}


def test_a_prebuilt_ecr_image_is_pulled_with_a_grant_on_its_repository_only(prebuilt_image: Assembly) -> None:
    resources = prebuilt_image.template(RECEIVER)["Resources"]
    (task,) = [r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    role = {"Ref": task["Properties"]["ExecutionRoleArn"]["Fn::GetAtt"][0]}
    pulls = [
        statement["Resource"]
        for r in resources.values()
        if r["Type"] == "AWS::IAM::Policy" and role in r["Properties"]["Roles"]
        for statement in r["Properties"]["PolicyDocument"]["Statement"]
        if "ecr:BatchGetImage" in statement["Action"]
    ]
    repository = "arn:aws:ecr:us-east-1:123456789012:repository/dynamodb-metric-stream-receiver"
    assert pulls == [repository]

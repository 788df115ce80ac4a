"""The deployment files (deploy/): kustomize renders every directory with a real kubectl, every
object validates against the Kubernetes JSON schemas, the manifests agree with the code (port,
routes, commands, settings, image user), and the Compose file starts things in the right order.

What the manifests need from the store work (operations issue) is listed once, in REQUIRED_*
below: until /readyz, /metrics, `db upgrade` and `serve --workers` exist, the tests that use them
fail. That is on purpose; nothing here is marked xfail.
"""

from __future__ import annotations

import http.server
import os
import re
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from copy import deepcopy
from itertools import takewhile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from starlette.routing import Match

from ehr.cli import build_parser
from service.main import create_app
from service.settings import Settings
from tests.conftest import make_settings
from tests.deploy import manifests as m

# -- What the manifests rely on from the code, in one place. ----------------------------------
# /healthz exists; /readyz, /metrics, `db upgrade` and `serve --workers` come with the store work.
REQUIRED_ROUTES = ("/healthz", "/readyz", "/metrics")
REQUIRED_COMMANDS = {
    "serve": ["serve", "--host", "0.0.0.0", "--port", "8080"],
    "serve-workers": ["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"],
    "db-upgrade": ["db", "upgrade"],
}
SERVE_PORT = 8080
IMAGE_UID = 10001
# Settings a deployment with a shared store cannot run without (docs/deploy.md).
COMPOSE_SECRETS = ("SUPPRESSION_SECRET", "METRICS_TOKEN")
PRODUCTION_REQUIRED = ("KETAMINE_CDS_DATABASE_URL", "KETAMINE_CDS_SUPPRESSION_SECRET")

DIRECTORIES = ("base", "overlays/staging", "overlays/production")
OVERLAYS = {"overlays/staging": "ketamine-cds-staging", "overlays/production": "ketamine-cds"}
# Oldest, a middle one and the newest schema set kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.25", "1.32", "1.37")
EXPECTED_KINDS = {
    "ServiceAccount",
    "ConfigMap",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "Job",
}
# The kustomize features the directories may use (docs/deploy.md, "Kustomize subset").
KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "images",
    "configMapGenerator",
    "patches",
}
IMAGE_REFERENCE = re.compile(
    r"(?P<repository>[^:@]+(?::\d+/[^:@]+)?)(?::(?P<tag>[\w.-]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?"
)
SERVER = {"app.kubernetes.io/name": "ketamine-cds", "app.kubernetes.io/component": "server"}


def _ids(values: Any) -> list[str]:
    return [str(v).replace("overlays/", "") for v in values]


@pytest.fixture(scope="module")
def app_routes() -> Callable[[str], bool]:
    """Whether the app answers ``GET path`` with a route (Starlette's own route matching: routers
    included anywhere count, whether or not they are in the OpenAPI schema)."""
    app = create_app(make_settings())

    def served(path: str) -> bool:
        scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
        return any(route.matches(scope)[0] == Match.FULL for route in app.routes)

    return served


def _deployment_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = m.one(objects, "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _job_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    job = m.one(objects, "Job")
    [container] = job["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _dockerfile(instruction: str) -> str:
    values = [args for name, args in m.dockerfile_instructions() if name == instruction]
    assert values, f"the Dockerfile has no {instruction}"
    return values[-1]


def _dockerfile_cmd() -> list[str]:
    cmd = yaml.safe_load(_dockerfile("CMD"))
    assert isinstance(cmd, list), "the Dockerfile CMD must be an exec-form JSON array"
    return [str(part) for part in cmd]


# -- (a) kustomize renders ---------------------------------------------------------------------


@pytest.mark.parametrize("directory", DIRECTORIES, ids=_ids(DIRECTORIES))
def test_kustomize_directory_renders_every_kind_once(directory: str) -> None:
    """Verify that kubectl kustomize renders each directory, silently, into one object of each
    expected kind with unique names."""
    objects = m.render(directory)
    kinds = [o["kind"] for o in objects]
    assert sorted(kinds) == sorted(EXPECTED_KINDS)
    assert m.render_warnings(directory) == ""


KUSTOMIZATIONS = sorted(
    p.relative_to(m.KUBERNETES) for p in m.KUBERNETES.rglob("kustomization.yaml")
)


@pytest.mark.parametrize("path", KUSTOMIZATIONS, ids=_ids(p.parent for p in KUSTOMIZATIONS))
def test_kustomization_features_within_documented_subset(path: Path) -> None:
    """Verify that every kustomization.yaml uses only the kustomize features docs/deploy.md lists
    (and patches only as strategic-merge patch files)."""
    data = yaml.safe_load((m.KUBERNETES / path).read_text(encoding="utf-8"))
    assert set(data) <= KUSTOMIZATION_KEYS, set(data) - KUSTOMIZATION_KEYS
    for patch in data.get("patches", []):
        assert set(patch) == {"path"}, patch
    for generator in data.get("configMapGenerator", []):
        assert set(generator) <= {"name", "envs", "literals", "behavior", "options"}, generator


@pytest.mark.parametrize(("overlay", "namespace"), OVERLAYS.items(), ids=_ids(OVERLAYS))
def test_overlay_namespace_and_image_pinned_everywhere(overlay: str, namespace: str) -> None:
    """Verify that an overlay puts every object in its namespace and runs one pinned registry
    image (never :latest) in the Deployment and the migration Job alike."""
    objects = m.render(overlay)
    assert {o["metadata"].get("namespace") for o in objects} == {namespace}
    images = {c["image"] for _, c in m.containers(objects)}
    assert len(images) == 1, f"the Job must migrate for the version it deploys: {images}"
    [image] = images
    parts = IMAGE_REFERENCE.fullmatch(image)
    assert parts is not None, image
    assert "/" in parts["repository"], f"{image}: no registry"
    assert parts["digest"] or parts["tag"] not in (None, "latest"), f"{image}: not pinned"


def _hpa(objects: list[dict[str, Any]], field: str) -> Any:
    return m.one(objects, "HorizontalPodAutoscaler")["spec"][field]


def _workers(objects: list[dict[str, Any]]) -> int:
    command = _deployment_container(objects)["command"]
    return int(command[command.index("--workers") + 1])


def _config(objects: list[dict[str, Any]], key: str) -> str:
    return str(m.one(objects, "ConfigMap")["data"][key])


OVERLAY_FACTS: dict[str, Callable[[list[dict[str, Any]]], Any]] = {
    "hpa-min": lambda objects: _hpa(objects, "minReplicas"),
    "hpa-max": lambda objects: _hpa(objects, "maxReplicas"),
    "pdb-min-available": lambda objects: m.one(objects, "PodDisruptionBudget")["spec"][
        "minAvailable"
    ],
    "workers": _workers,
    "memory-limit": lambda objects: _deployment_container(objects)["resources"]["limits"]["memory"],
    "retention-days": lambda objects: _config(objects, "KETAMINE_CDS_CARD_LOG_RETENTION_DAYS"),
    "public-url": lambda objects: _config(objects, "KETAMINE_CDS_PUBLIC_BASE_URL"),
    "zone-spread": lambda objects: (
        "topology.kubernetes.io/zone"
        in {
            c["topologyKey"]
            for c in m.one(objects, "Deployment")["spec"]["template"]["spec"][
                "topologySpreadConstraints"
            ]
        }
    ),
}
OVERLAY_EXPECTED = [
    ("base", "hpa-min", 2),
    ("base", "hpa-max", 6),
    ("base", "pdb-min-available", 1),
    ("base", "workers", 2),
    ("base", "zone-spread", False),
    ("overlays/staging", "hpa-min", 2),
    ("overlays/staging", "hpa-max", 3),
    ("overlays/staging", "pdb-min-available", 1),
    ("overlays/staging", "workers", 1),
    ("overlays/staging", "memory-limit", "512Mi"),
    ("overlays/staging", "retention-days", "14"),
    ("overlays/staging", "public-url", "https://cds-staging.example.invalid"),
    ("overlays/staging", "zone-spread", False),
    ("overlays/production", "hpa-min", 3),
    ("overlays/production", "hpa-max", 10),
    ("overlays/production", "pdb-min-available", 2),
    ("overlays/production", "workers", 2),
    ("overlays/production", "memory-limit", "1Gi"),
    ("overlays/production", "retention-days", "90"),
    ("overlays/production", "public-url", "https://cds.example.invalid"),
    ("overlays/production", "zone-spread", True),
]


@pytest.mark.parametrize(
    ("directory", "fact", "expected"),
    OVERLAY_EXPECTED,
    ids=[f"{d.replace('overlays/', '')}-{f}" for d, f, _ in OVERLAY_EXPECTED],
)
def test_overlay_patches_rendered_value_expected(directory: str, fact: str, expected: Any) -> None:
    """Verify that the overlays' patches and generators take effect in the rendered objects."""
    assert OVERLAY_FACTS[fact](m.render(directory)) == expected


# -- (b) schema validation ---------------------------------------------------------------------

SCHEMA_CASES = [(d, v) for d in DIRECTORIES for v in KUBERNETES_VERSIONS]


@pytest.mark.parametrize(
    ("directory", "version"),
    SCHEMA_CASES,
    ids=[f"{d.replace('overlays/', '')}-k8s{v}" for d, v in SCHEMA_CASES],
)
def test_rendered_objects_schema_strict_valid(directory: str, version: str) -> None:
    """Verify that every rendered object validates, strictly (no unknown field), against the
    Kubernetes JSON schema of that version."""
    for obj in m.render(directory):
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {exc.message}")


@pytest.mark.parametrize(
    "version", KUBERNETES_VERSIONS, ids=[f"k8s{v}" for v in KUBERNETES_VERSIONS]
)
def test_secret_example_schema_strict_valid(version: str) -> None:
    """Verify that the example Secret (not rendered on purpose) validates too."""
    kubernetes_validate.validate(m.secret_example(), version, strict=True)


def _misspell_probe(d: dict[str, Any]) -> None:
    c = d["spec"]["template"]["spec"]["containers"][0]
    c["readinesProbe"] = c.pop("readinessProbe")


def _port_as_text(d: dict[str, Any]) -> None:
    d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8080"


def _no_selector(d: dict[str, Any]) -> None:
    del d["spec"]["selector"]


BROKEN = {"misspelled-field": _misspell_probe, "wrong-type": _port_as_text, "missing": _no_selector}


@pytest.mark.parametrize("mutation", list(BROKEN.values()), ids=list(BROKEN))
def test_schema_validation_broken_deployment_rejected(mutation: Callable[..., None]) -> None:
    """Verify that the schema check can fail: a misspelled, mistyped or missing field in the
    rendered Deployment is rejected."""
    broken = deepcopy(m.one(m.render("overlays/production"), "Deployment"))
    mutation(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


# -- (c) the manifests against the code --------------------------------------------------------


@pytest.mark.parametrize("route", REQUIRED_ROUTES)
def test_app_required_route_served(route: str, app_routes: Callable[[str], bool]) -> None:
    """Verify that the app serves every route the deployment relies on (probes, metrics)."""
    assert app_routes(route), f"GET {route} is not a route of service.main.create_app()"


PROBES = [(d, p) for d in DIRECTORIES for p in ("startupProbe", "readinessProbe", "livenessProbe")]


@pytest.mark.parametrize(
    ("directory", "probe"),
    PROBES,
    ids=[f"{d.replace('overlays/', '')}-{p}" for d, p in PROBES],
)
def test_probe_path_required_and_served(
    directory: str, probe: str, app_routes: Callable[[str], bool]
) -> None:
    """Verify that each probe of the Deployment targets the serving port and a path that is both
    a required route and served by the app."""
    container = _deployment_container(m.render(directory))
    get = container[probe]["httpGet"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports.get(get["port"], get["port"]) == SERVE_PORT
    assert get["path"] in REQUIRED_ROUTES
    assert app_routes(get["path"]), f"{probe} {get['path']} is not served by the app"


def test_probes_liveness_healthz_readiness_readyz() -> None:
    """Verify that liveness never depends on the store (/healthz) while readiness does
    (/readyz), so that a database outage stops traffic without restarting every pod."""
    container = _deployment_container(m.render("base"))
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def _parse(argv: list[str]) -> Any:
    try:
        return build_parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"`ketamine-cds {shlex.join(argv)}` is refused by the CLI (exit {exc.code})")


@pytest.mark.parametrize("argv", list(REQUIRED_COMMANDS.values()), ids=list(REQUIRED_COMMANDS))
def test_cli_required_command_accepted(argv: list[str]) -> None:
    """Verify that ehr.cli.build_parser() accepts each command the deployment runs."""
    assert _parse(argv).command == argv[0]


def _subcommand(argv: list[str]) -> tuple[str, ...]:
    """The words before the first option: ("serve",), ("db", "upgrade")."""
    return tuple(takewhile(lambda word: not word.startswith("-"), argv))


def _compose_command(name: str) -> list[str]:
    return [str(part) for part in m.compose()["services"][name]["command"]]


COMMAND_SOURCES: dict[str, Callable[[], list[str]]] = {
    **{
        f"{d.replace('overlays/', '')}-deployment": (
            lambda d=d: _deployment_container(m.render(d))["command"]
        )
        for d in DIRECTORIES
    },
    **{
        f"{d.replace('overlays/', '')}-migrate-job": (
            lambda d=d: _job_container(m.render(d))["command"]
        )
        for d in DIRECTORIES
    },
    "compose-app": lambda: _compose_command("app"),
    "compose-migrate": lambda: _compose_command("migrate"),
    "dockerfile-cmd": _dockerfile_cmd,
}


@pytest.mark.parametrize("source", list(COMMAND_SOURCES.values()), ids=list(COMMAND_SOURCES))
def test_manifest_command_is_cli_command(source: Callable[[], list[str]]) -> None:
    """Verify that every command a manifest runs is `ketamine-cds` with arguments the CLI
    accepts, and one of the required commands."""
    command = source()
    assert command[0] == "ketamine-cds"
    assert _subcommand(command[1:]) in {_subcommand(v) for v in REQUIRED_COMMANDS.values()}
    _parse(command[1:])


SERVE_SOURCES = {k: v for k, v in COMMAND_SOURCES.items() if "migrate" not in k}


@pytest.mark.parametrize("source", list(SERVE_SOURCES.values()), ids=list(SERVE_SOURCES))
def test_serve_command_port_is_container_port(source: Callable[[], list[str]]) -> None:
    """Verify that each serve command, as the CLI reads it, binds all interfaces on the port the
    manifests expose (container port, Service, Dockerfile EXPOSE)."""
    args, _unknown = build_parser().parse_known_args(source()[1:])
    assert args.command == "serve"
    assert (args.host, args.port) == ("0.0.0.0", SERVE_PORT)


@pytest.mark.parametrize("directory", DIRECTORIES, ids=_ids(DIRECTORIES))
def test_service_and_image_ports_match_serve_port(directory: str) -> None:
    """Verify that the container port, the Service's target and the image's EXPOSE are the
    serving port."""
    objects = m.render(directory)
    container = _deployment_container(objects)
    assert [(p["name"], p["containerPort"]) for p in container["ports"]] == [("http", SERVE_PORT)]
    [port] = m.one(objects, "Service")["spec"]["ports"]
    assert port["targetPort"] in ("http", SERVE_PORT)
    assert _dockerfile("EXPOSE") == str(SERVE_PORT)


def _settings_fields() -> set[str]:
    return {f"{m.ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}


def _compose_ketamine_services() -> dict[str, dict[str, Any]]:
    services = m.compose()["services"]
    return {n: s for n, s in services.items() if s.get("image", "").startswith("ketamine-cds")}


ENV_SOURCES: dict[str, Callable[[], set[str]]] = {
    **{
        d.replace("overlays/", ""): (
            lambda d=d: set().union(
                *(m.env_names_of_container(m.render(d), c) for _, c in m.containers(m.render(d)))
            )
        )
        for d in DIRECTORIES
    },
    "compose-app": lambda: m.compose_service_env_names(m.compose()["services"]["app"]),
    "compose-migrate": lambda: m.compose_service_env_names(m.compose()["services"]["migrate"]),
    "compose-env-example": lambda: set(m.read_env_file(m.COMPOSE_ENV_EXAMPLE)),
}


@pytest.mark.parametrize("source", list(ENV_SOURCES.values()), ids=list(ENV_SOURCES))
def test_manifest_env_names_are_settings_fields(source: Callable[[], set[str]]) -> None:
    """Verify that every KETAMINE_CDS_* variable a manifest or example sets is a field of
    service.settings.Settings (a typo would be ignored silently by the service)."""
    names = {n for n in source() if n.startswith(m.ENV_PREFIX)}
    assert names, "no KETAMINE_CDS_* variable found"
    unknown = names - _settings_fields()
    assert not unknown, f"not settings: {sorted(unknown)}"


SERVER_ENV_SOURCES = {
    **{d.replace("overlays/", ""): d for d in DIRECTORIES},
    "compose-app": "compose-app",
}


@pytest.mark.parametrize("source", list(SERVER_ENV_SOURCES.values()), ids=list(SERVER_ENV_SOURCES))
def test_server_env_production_required_settings_set(source: str) -> None:
    """Verify that the server gets every setting a deployment with a shared store requires."""
    if source == "compose-app":
        names = m.compose_service_env_names(m.compose()["services"]["app"])
    else:
        objects = m.render(source)
        names = m.env_names_of_container(objects, _deployment_container(objects))
    assert set(PRODUCTION_REQUIRED) <= names


def _interpolate(value: str, variables: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        return variables[match.group(1)]

    result = re.sub(r"\$\{([A-Z0-9_]+)(?::\?[^}]*)?\}", substitute, value)
    assert "$" not in result, f"unsupported interpolation in {value!r}"
    return result


TEST_SECRET = "0123456789abcdef" * 4


def _kubernetes_env(directory: str, kind: str) -> dict[str, str]:
    objects = m.render(directory)
    container = _deployment_container(objects) if kind == "Deployment" else _job_container(objects)
    secret = m.secret_example()
    env = m.config_values(objects, container)
    for variable, name, key, _optional in m.secret_refs(container):
        assert name == secret["metadata"]["name"]
        env[variable] = secret["stringData"][key]
    return env


def _compose_env(service: str) -> dict[str, str]:
    example = m.read_env_file(m.COMPOSE_ENV_EXAMPLE)
    # The operator fills in the empty REQUIRED values; stand in for them.
    filled = {k: (v or TEST_SECRET) for k, v in example.items()}
    env = dict(filled)
    for key, value in m.compose_environment(m.compose()["services"][service]).items():
        env[key] = _interpolate(value, filled)
    return env


CONFIG_SOURCES: dict[str, Callable[[], dict[str, str]]] = {
    **{
        f"{d.replace('overlays/', '')}-{k.lower()}": (lambda d=d, k=k: _kubernetes_env(d, k))
        for d in DIRECTORIES
        for k in ("Deployment", "Job")
    },
    "compose-app": lambda: _compose_env("app"),
    "compose-migrate": lambda: _compose_env("migrate"),
}


@pytest.mark.parametrize("source", list(CONFIG_SOURCES.values()), ids=list(CONFIG_SOURCES))
def test_manifest_config_values_accepted_by_settings(
    source: Callable[[], dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify that the configuration each container gets (ConfigMap or env file, with the
    example Secret's placeholders) is valid for Settings read from the environment, as the
    service reads it on a public bind address."""
    env = source()
    for name in list(os.environ):
        if name.startswith(m.ENV_PREFIX):
            monkeypatch.delenv(name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = Settings(bind_host="0.0.0.0")
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.public_base_url is not None
    assert settings.clients, "no trusted client configured"
    assert settings.allow_unauthenticated is False


@pytest.mark.parametrize("directory", DIRECTORIES, ids=_ids(DIRECTORIES))
def test_secret_refs_match_example_secret(directory: str) -> None:
    """Verify that every Secret key the pods read is in the example Secret, that only the metrics
    token is optional, and that the example has no key nobody reads."""
    secret = m.secret_example()
    referenced: set[str] = set()
    for _, container in m.containers(m.render(directory)):
        for variable, name, key, optional in m.secret_refs(container):
            assert name == secret["metadata"]["name"]
            assert key in secret["stringData"], key
            assert optional == (variable == "KETAMINE_CDS_METRICS_TOKEN"), variable
            referenced.add(key)
    assert referenced == set(secret["stringData"])


def test_examples_hold_no_secret() -> None:
    """Verify that the committed examples carry placeholders, never secrets: the Secret's values
    say REPLACE-ME, the env example leaves every secret empty, and its filled copy is ignored."""
    for key, value in m.secret_example()["stringData"].items():
        assert "REPLACE-ME" in value, key
    example = m.read_env_file(m.COMPOSE_ENV_EXAMPLE)
    for key in ("POSTGRES_PASSWORD", *(f"{m.ENV_PREFIX}{n}" for n in COMPOSE_SECRETS)):
        assert example[key] == "", key
    ignored = (m.ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "deploy/compose.env" in ignored


def test_image_user_is_manifest_user() -> None:
    """Verify that the uid the manifests and Compose run as is the image's own user."""
    runs = " ".join(args for name, args in m.dockerfile_instructions() if name == "RUN")
    match = re.search(r"useradd\b.*--uid (\d+)", runs)
    assert match is not None and int(match.group(1)) == IMAGE_UID
    for directory in DIRECTORIES:
        for _, spec in m.pod_specs(m.render(directory)):
            assert spec["securityContext"]["runAsUser"] == IMAGE_UID
    for service in _compose_ketamine_services().values():
        assert service["user"] == f"{IMAGE_UID}:{IMAGE_UID}"


POD_CASES = [(d, k) for d in DIRECTORIES for k in m.POD_KINDS]


@pytest.mark.parametrize(
    ("directory", "kind"),
    POD_CASES,
    ids=[f"{d.replace('overlays/', '')}-{k.lower()}" for d, k in POD_CASES],
)
def test_pod_restricted_security_and_resources(directory: str, kind: str) -> None:
    """Verify that each pod meets the restricted Pod Security Standard (non-root uid, no
    privilege escalation, no capability, RuntimeDefault seccomp), has a read-only root with an
    emptyDir /tmp, no service account token, and CPU and memory requests within limits."""
    workload = m.one(m.render(directory), kind)
    spec = workload["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not {"hostNetwork", "hostPID", "hostIPC"} & set(spec)
    volumes = {v["name"]: v for v in spec["volumes"]}
    for container in spec["containers"]:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["runAsUser"] == IMAGE_UID
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        for resource in ("cpu", "memory"):
            request = _quantity(container["resources"]["requests"][resource])
            limit = _quantity(container["resources"]["limits"][resource])
            assert 0 < request <= limit, (container["name"], resource)


def _quantity(text: str | int) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?", str(text))
    assert match is not None, text
    factor = {None: 1, "m": 0.001, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[match.group(2)]
    return float(match.group(1)) * factor


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.parametrize("directory", DIRECTORIES, ids=_ids(DIRECTORIES))
def test_references_and_selectors_resolve(directory: str) -> None:
    """Verify that names and selectors connect: the HPA scales the Deployment with at least two
    replicas, the Service and PDB select the server pods and never the migration pods, and every
    ConfigMap and ServiceAccount a pod names is rendered."""
    objects = m.render(directory)
    deployment = m.one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    job_labels = m.one(objects, "Job")["spec"]["template"]["metadata"]["labels"]
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    assert deployment["spec"]["selector"]["matchLabels"] == SERVER
    hpa = m.one(objects, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["minReplicas"] >= 2
    for selector in (
        m.one(objects, "Service")["spec"]["selector"],
        m.one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
    ):
        assert _matches(selector, pod_labels)
        assert not _matches(selector, job_labels)
    for _, spec in m.pod_specs(objects):
        assert m.by_name(objects, "ServiceAccount", spec["serviceAccountName"]) is not None
        for container in spec["containers"]:
            for source in container.get("envFrom", []):
                name = source["configMapRef"]["name"]
                assert m.by_name(objects, "ConfigMap", name) is not None, name


def _phase_one(objects: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """What `kubectl apply -k DIR -l app.kubernetes.io/component!=server` applies."""
    return {
        (o["kind"], o["metadata"]["name"])
        for o in objects
        if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") != "server"
    }


@pytest.mark.parametrize("directory", DIRECTORIES, ids=_ids(DIRECTORIES))
def test_apply_phases_migration_before_server(directory: str) -> None:
    """Verify the two-phase apply of docs/deploy.md: the first phase (component!=server) holds the
    migration Job and everything it needs, and none of the server's objects."""
    objects = m.render(directory)
    first = _phase_one(objects)
    job = m.one(objects, "Job")
    spec = job["spec"]["template"]["spec"]
    needed = {("Job", job["metadata"]["name"]), ("ServiceAccount", spec["serviceAccountName"])}
    for container in spec["containers"]:
        needed |= {("ConfigMap", s["configMapRef"]["name"]) for s in container.get("envFrom", [])}
    assert needed <= first
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert (kind, m.one(objects, kind)["metadata"]["name"]) not in first


# -- (d) Docker Compose ------------------------------------------------------------------------


def test_compose_services_present() -> None:
    """Verify that the Compose file parses and has the store, the migration, the replicas and
    the proxy, with PostgreSQL 16 on a named volume."""
    data = m.compose()
    assert set(data["services"]) == {"postgres", "migrate", "app", "proxy"}
    postgres = data["services"]["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)?(-[a-z0-9]+)?", postgres["image"])
    [volume] = postgres["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data" and name in data["volumes"]
    assert data["services"]["app"]["deploy"]["replicas"] >= 2


DEPENDS_ON = [
    ("migrate", "postgres", "service_healthy"),
    ("app", "postgres", "service_healthy"),
    ("app", "migrate", "service_completed_successfully"),
    ("proxy", "app", "service_healthy"),
]


@pytest.mark.parametrize(
    ("service", "dependency", "condition"),
    DEPENDS_ON,
    ids=[f"{s}-after-{d}" for s, d, _ in DEPENDS_ON],
)
def test_compose_depends_on_condition(service: str, dependency: str, condition: str) -> None:
    """Verify the start-up order: postgres healthy, then the migration completed, then the
    replicas, then the proxy once they are healthy."""
    depends = m.compose()["services"][service]["depends_on"]
    assert depends[dependency]["condition"] == condition
    if condition == "service_healthy":
        healthcheck = m.compose()["services"][dependency].get("healthcheck", {})
        assert healthcheck.get("test") and not healthcheck.get("disable")


def test_compose_migrate_one_shot_without_server_healthcheck() -> None:
    """Verify that the migration runs once (no restart) and switches off the image's server
    healthcheck."""
    migrate = m.compose()["services"]["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["healthcheck"] == {"disable": True}


def _compose_healthcheck_code() -> str:
    test = m.compose()["services"]["app"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    return str(test[3])


def _dockerfile_healthcheck_code() -> str:
    argv = shlex.split(_dockerfile("HEALTHCHECK"))
    command = argv[argv.index("CMD") + 1 :]
    assert command[:2] == ["python", "-c"]
    return command[2]


HEALTHCHECKS = {
    "compose-app": _compose_healthcheck_code,
    "dockerfile": _dockerfile_healthcheck_code,
}
HEALTH_CASES = [(n, s, s == 200) for n in HEALTHCHECKS for s in (200, 503)]


@pytest.mark.parametrize(
    ("source", "status", "healthy"),
    HEALTH_CASES,
    ids=[f"{n}-{s}" for n, s, _ in HEALTH_CASES],
)
def test_healthcheck_command_follows_healthz_status(
    source: str, status: int, healthy: bool
) -> None:
    """Verify that the healthcheck command, run as the container runs it, asks /healthz on the
    serving port and succeeds on 200 and fails otherwise."""
    code = HEALTHCHECKS[source]()
    target = f"http://127.0.0.1:{SERVE_PORT}/healthz"
    assert target in code
    with _status_server(status) as (port, paths):
        completed = subprocess.run(
            [sys.executable, "-c", code.replace(target, f"http://127.0.0.1:{port}/healthz")],
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert paths == ["/healthz"]
    assert (completed.returncode == 0) is healthy


@contextmanager
def _status_server(status: int) -> Iterator[tuple[int, list[str]]]:
    """A loopback HTTP server answering every GET with ``status``; yields its port and the paths
    it was asked for."""
    paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1]), paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


HARDENED = ["migrate", "app", "proxy"]


@pytest.mark.parametrize("service", HARDENED)
def test_compose_service_hardened(service: str) -> None:
    """Verify that the services built or configured here run with a read-only root, a /tmp
    tmpfs, no capability and no privilege escalation."""
    spec = m.compose()["services"][service]
    assert spec["read_only"] is True
    assert "/tmp" in spec["tmpfs"]
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]


def test_compose_ketamine_services_share_image_and_env_file() -> None:
    """Verify that the migration and the replicas run the same image with the same env file and
    the database URL built from POSTGRES_PASSWORD, which the compose file refuses to be empty."""
    services = _compose_ketamine_services()
    assert set(services) == {"migrate", "app"}
    assert len({s["image"] for s in services.values()}) == 1
    for service in services.values():
        assert service["env_file"] == ["compose.env"]
        assert service["build"]["context"] == ".."
        url = m.compose_environment(service)["KETAMINE_CDS_DATABASE_URL"]
        assert "${POSTGRES_PASSWORD:?" in url and "@postgres:5432/" in url
    postgres_env = m.compose_environment(m.compose()["services"]["postgres"])
    assert postgres_env["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")


def _nginx_directives() -> Iterator[tuple[str, list[str]]]:
    text = re.sub(r"#.*", "", m.NGINX_CONF.read_text(encoding="utf-8"))
    for statement in re.split(r"[;{}]", text):
        words = statement.split()
        if words:
            yield words[0], words[1:]


def test_compose_proxy_targets_replicas_and_hides_metrics() -> None:
    """Verify that nginx listens on the proxy's published port, sends calls to the replicas'
    service name and serving port, and answers /metrics itself (never forwarded)."""
    directives = list(_nginx_directives())
    upstreams = [args[1] for name, args in directives if name == "set"]
    assert upstreams == [f"http://app:{SERVE_PORT}"]
    listens = [args[0] for name, args in directives if name == "listen"]
    proxy = m.compose()["services"]["proxy"]
    assert [p.rsplit(":", 1)[1] for p in proxy["ports"]] == listens
    assert all(p.startswith("127.0.0.1:") for p in proxy["ports"])
    text = m.NGINX_CONF.read_text(encoding="utf-8")
    assert re.search(r"location = /metrics\s*\{\s*return 404;", text)
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]

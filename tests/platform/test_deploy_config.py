"""deploy/ checked offline (no container engine runs here): the compose file against the
compose-spec schema, the Kubernetes manifests against Kubernetes' own schemas, every variable our
containers are given is one the code reads, and every address names a service that exists."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from cms.config import REPO_ROOT, SERVICE_PORTS

COMPOSE = REPO_ROOT / "deploy" / "docker" / "compose.yaml"
MANIFESTS = REPO_ROOT / "deploy" / "k8s" / "cms.yaml"
KUBERNETES_VERSION = "1.33.0"
# Variables our containers are given that another program reads, not our code.
READ_ELSEWHERE = {
    "PGPASSFILE": "libpq (the database password file)",
    "PYTHONUNBUFFERED": "Python",
    "PYTHONPATH": "Python",
}
# Images that are not ours: their variables are theirs.
OUR_COMMAND = re.compile(r"^(services|cms)\.")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def manifests() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(MANIFESTS.read_text()) if doc]


def variables_the_code_reads() -> set[str]:
    """Every upper-case name quoted in the product's code, plus the per-service names it builds."""
    names = {f"{name.upper()}_ADDRESS" for name in SERVICE_PORTS}
    names |= {variable for variable, _ in SERVICE_PORTS.values()}
    for package in ("cms", "services", "activities", "workflows", "domain"):
        for source in (REPO_ROOT / package).rglob("*.py"):
            names |= set(re.findall(r"""["']([A-Z][A-Z0-9_]{2,})["']""", source.read_text()))
    return names


def our_compose_services() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in compose()["services"].items():
        command = service.get("command") or []
        if len(command) >= 3 and OUR_COMMAND.match(command[2]):
            yield name, service


def our_containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in manifests():
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            yield doc["metadata"]["name"], container


def config_map() -> dict[str, str]:
    (found,) = [doc["data"] for doc in manifests() if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "cms-config"]
    return found


def test_compose_is_valid_against_the_compose_spec() -> None:
    schema_file = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(compose(), schema)


@pytest.mark.parametrize("doc", manifests(), ids=lambda doc: f"{doc['kind']}/{doc['metadata']['name']}")
def test_each_manifest_is_valid_kubernetes(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_variable_our_containers_get_is_read_by_the_code() -> None:
    known = variables_the_code_reads() | set(READ_ELSEWHERE)
    given: dict[str, set[str]] = {}
    for name, service in our_compose_services():
        for variable in service.get("environment", {}):
            given.setdefault(variable, set()).add(f"compose {name}")
    for variable in config_map():
        given.setdefault(variable, set()).add("ConfigMap cms-config")
    for name, container in our_containers():
        for entry in container.get("env", []):
            given.setdefault(entry["name"], set()).add(f"Deployment {name}")
    unread = {variable: sorted(where) for variable, where in given.items() if variable not in known}
    assert not unread, f"set in deploy/ but read by nothing: {unread}"
    assert "DATABASE_URL" in given and "TEMPORAL_ADDRESS" in given


def _host(address: str) -> str:
    address = address.removeprefix("dns:///")
    return re.split(r"[:/]", address.split("@")[-1])[0]


def test_every_compose_address_names_a_compose_service() -> None:
    services = set(compose()["services"])
    for name, service in our_compose_services():
        env = service.get("environment", {})
        for variable, value in env.items():
            if variable.endswith("_ADDRESS"):
                assert _host(value) in services, f"{name}: {variable}={value} names no compose service"
        assert _host(env["DATABASE_URL"].removeprefix("postgresql://")) in services
        assert env.get("GRPC_HOST") == "0.0.0.0", f"{name} must listen beyond its own loopback"
    # Every service is given an address to be reached at, so none is dialled at GRPC_HOST (itself).
    shared = compose()["x-app"]["environment"]
    for service_name in SERVICE_PORTS:
        assert _host(shared[f"{service_name.upper()}_ADDRESS"]) in services


def test_every_kubernetes_address_names_a_service_on_its_port() -> None:
    ports = {doc["metadata"]["name"]: {p["port"] for p in doc["spec"]["ports"]}
             for doc in manifests() if doc["kind"] == "Service"}
    for variable, value in config_map().items():
        if variable.endswith("_ADDRESS") and value.startswith("dns:///"):
            host, port = value.removeprefix("dns:///").split(":")
            assert host in ports and int(port) in ports[host], f"{variable}={value} names no Service on that port"
    deployments = {doc["metadata"]["name"] for doc in manifests() if doc["kind"] == "Deployment"}
    for doc in manifests():
        if doc["kind"] in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
            target = doc["spec"].get("scaleTargetRef", {}).get("name") or doc["metadata"]["name"]
            assert target in deployments, f"{doc['kind']} {doc['metadata']['name']} has no Deployment"


def test_a_grpc_service_is_ready_only_when_its_health_check_says_so() -> None:
    for name, container in our_containers():
        grpc_ports = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == "grpc"]
        if grpc_ports:
            assert container["readinessProbe"]["grpc"]["port"] == grpc_ports[0], name


def test_the_schema_check_can_fail(tmp_path: Path) -> None:
    broken = compose()
    broken["services"]["worker"]["enviroment"] = {"GRPC_HOST": "0.0.0.0"}   # misspelt: not a compose key
    schema_file = resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, json.loads(schema_file.read_text()))
    bad = next(doc for doc in manifests() if doc["kind"] == "Deployment")
    bad = {**bad, "spec": {**bad["spec"], "replicas": "four"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)

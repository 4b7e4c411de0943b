"""The compose files are valid and start the services as `python -m stack` does.

No Docker engine is needed: the files are checked against the Compose
Specification schema bundled with check-jsonschema, and read as YAML.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from stack.secrets import SECRETS
from stack.services import Ports, service_commands

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILES = {
    "mock": ROOT / "docker-compose.mock.yml",
    "test": ROOT / "docker-compose.test.yml",
    "prod": ROOT / "docker-compose.prod.yml",
}
# The stack mode each compose file mirrors. Production runs no mock gateway.
STACK_MODES = {"mock": "mock", "test": "test", "prod": "test"}


def load_compose(kind: str) -> dict:
    with open(COMPOSE_FILES[kind], encoding="utf-8") as file:
        return YAML(typ="safe").load(file)


def configured_port(service: str) -> int:
    return json.loads((ROOT / "config" / f"{service}.json").read_text(encoding="utf-8"))["port"]


def stack_services(kind: str) -> dict:
    ports = Ports(
        web=configured_port("web"),
        email_client=configured_port("email_client"),
        mock_gateway=configured_port("mock_gateway"),
    )
    secret_files = {name: Path("/unused") / name for name in SECRETS}
    specs = service_commands(STACK_MODES[kind], ports, "postgresql://unused", "redis://unused", secret_files)
    return {spec.name: spec for spec in specs}


def test_compose_files_match_schema():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", *map(str, COMPOSE_FILES.values())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kind", COMPOSE_FILES)
def test_compose_commands_match_stack(kind):
    services = load_compose(kind)["services"]
    for name, spec in stack_services(kind).items():
        assert name in services, f"{COMPOSE_FILES[kind].name} lacks service {name}"
        assert services[name]["command"] == ["python", *spec.command[1:]], name


@pytest.mark.parametrize("kind", COMPOSE_FILES)
def test_compose_environment_matches_stack(kind):
    services = load_compose(kind)["services"]
    for name, spec in stack_services(kind).items():
        environment = services[name]["environment"]
        missing = sorted(set(spec.env) - set(environment))
        assert missing == [], f"{name} in {COMPOSE_FILES[kind].name} lacks {missing}"
        prefix = name.upper()
        assert environment[f"{prefix}_HOST"] == "0.0.0.0", name
        assert environment[f"{prefix}_PORT"] == str(spec.port), name


@pytest.mark.parametrize("kind", COMPOSE_FILES)
def test_compose_healthchecks_use_service_port(kind):
    services = load_compose(kind)["services"]
    for name, spec in stack_services(kind).items():
        check = " ".join(services[name]["healthcheck"]["test"])
        assert f"127.0.0.1:{spec.port}/healthz" in check, name


@pytest.mark.parametrize("kind", COMPOSE_FILES)
def test_compose_runs_only_stack_services(kind):
    services = load_compose(kind)["services"]
    built = {name for name, service in services.items() if "build" in service and name != "secrets"}
    assert built == set(stack_services(kind))


@pytest.mark.parametrize("kind", ["mock", "test"])
def test_compose_creates_secrets_like_stack(kind):
    services = load_compose(kind)["services"]
    assert services["secrets"]["command"] == ["python", "-m", "stack.secrets", "/secrets"]
    for name, spec in stack_services(kind).items():
        for variable, path in spec.env.items():
            if variable.endswith("_FILE"):
                assert services[name]["environment"][variable] == f"/secrets/{Path(path).name}", name
        if any(variable.endswith("_FILE") for variable in spec.env):
            assert services[name]["depends_on"]["secrets"]["condition"] == "service_completed_successfully"


def test_mock_compose_has_mock_gateway():
    services = load_compose("mock")["services"]
    assert "mock_gateway" in services
    assert services["email_client"]["environment"]["EMAIL_CLIENT_GATEWAY_URL"] == "http://mock_gateway:5052"


def test_test_compose_has_no_mock_gateway():
    services = load_compose("test")["services"]
    assert "mock_gateway" not in services
    assert services["email_client"]["environment"]["EMAIL_CLIENT_GATEWAY_URL"] is None


def test_local_compose_mounts_source():
    for kind in ("mock", "test"):
        for name in stack_services(kind):
            service = load_compose(kind)["services"][name]
            assert service["build"]["dockerfile"] == "Dockerfile.local", (kind, name)
            assert ".:/app" in service["volumes"], (kind, name)


def test_prod_compose_uses_external_servers():
    compose = load_compose("prod")
    services = compose["services"]
    assert set(services) == {"web", "email_client"}
    assert services["web"]["environment"]["DATABASE_URL"].startswith("${DATABASE_URL:?")
    assert services["email_client"]["environment"]["REDIS_URL"].startswith("${REDIS_URL:?")
    assert services["email_client"]["environment"]["EMAIL_CLIENT_GATEWAY_URL"].startswith("${EMAIL_CLIENT_GATEWAY_URL:?")
    for name, service in services.items():
        assert service["build"]["dockerfile"] == "Dockerfile", name
        # The source is inside the image: the only mount is the folder of secret files.
        assert service["volumes"] == [
            "${POSTMILL_SECRETS_DIR:?set POSTMILL_SECRETS_DIR to the folder of the secret files}"
            ":/run/postmill-secrets:ro"
        ], name

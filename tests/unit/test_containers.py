"""The container files, checked without a Docker engine: the compose files against the
Compose specification (the compose-spec validator from PyPI), the services wired as the
docs say, and every file, stage, command and extra the Dockerfiles name exists."""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = ("Dockerfile", "Dockerfile.cuda")
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.gpu.yml")

compose_spec = pytest.importorskip("compose_spec")


def compose(name: str) -> dict:
    """The compose file as the specification reads it (refused if it does not conform)."""
    text = (ROOT / name).read_text()
    return compose_spec.PyCompose.from_yaml(text).to_dict()


def instructions(name: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined."""
    lines, current = [], ""
    for raw in (ROOT / name).read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        current += " " + stripped.removesuffix("\\").strip()
        if not stripped.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def stages(name: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions(name):
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_the_compose_files_conform_to_the_compose_specification(name: str) -> None:
    assert compose(name)["services"]


def test_a_compose_file_that_breaks_the_specification_is_refused() -> None:
    broken = (ROOT / "docker-compose.yml").read_text().replace("shm_size:", "shm_sise:")
    with pytest.raises(ValueError):
        compose_spec.PyCompose.from_yaml(broken)


def test_the_services_are_wired_as_documented() -> None:
    spec = compose("docker-compose.yml")
    services = spec["services"]
    assert set(services) == {"app", "qdrant", "ollama"}
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    app = raw["app"]
    published = {str(p).split(":")[0].strip('"') for p in app["ports"]}
    assert published == {"8050", "8888"}, "only the app's keyed ports are published"
    assert app["shm_size"] == "32gb"
    env = app["environment"]
    assert env["AIFT_QDRANT_URL"] == "http://qdrant:6333"
    assert env["AIFT_OLLAMA_URL"] == "http://ollama:11434"
    assert env["AIFT_OLLAMA_DEFAULT_MODEL"] == "llama3.2:3b"
    assert env["AIFT_API_KEY"].startswith("${AIFT_API_KEY:?"), "no public server without a key"
    assert "JUPYTER_TOKEN" not in env, "JupyterLab's token is the API key"
    assert set(app["depends_on"]) == {"qdrant", "ollama"}
    assert "healthcheck" in app and "/healthz" in " ".join(app["healthcheck"]["test"])
    volumes = spec["volumes"]
    for service, target in (
        ("app", "/data"),
        ("qdrant", "/qdrant/storage"),
        ("ollama", "/root/.ollama"),
    ):
        named = [v for v in raw[service]["volumes"] if v.split(":")[1] == target]
        assert named and named[0].split(":")[0] in volumes, f"{service} keeps nothing"
    assert raw["ollama"]["environment"]["OLLAMA_PULL_MODEL"] == "llama3.2:3b"


def test_the_gpu_override_reserves_nvidia_gpus_and_builds_the_cuda_image() -> None:
    raw = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())["services"]
    assert raw["app"]["build"]["dockerfile"] == "Dockerfile.cuda"
    for service in ("app", "ollama"):
        devices = raw[service]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_every_file_the_compose_files_mount_or_build_exists() -> None:
    for name in COMPOSE_FILES:
        for service in yaml.safe_load((ROOT / name).read_text())["services"].values():
            build = service.get("build")
            if build:
                assert (ROOT / build["context"] / build["dockerfile"]).is_file()
            for volume in service.get("volumes", []):
                source = volume.split(":")[0]
                if source.startswith("./"):
                    assert (ROOT / source).is_file(), f"{name} mounts missing {source}"
    script = (ROOT / "docker" / "ollama-entrypoint.sh").read_text()
    assert "ollama pull" in script and "llama3.2:3b" in script


@pytest.mark.parametrize("name", DOCKERFILES)
def test_the_dockerfiles_are_multi_stage_non_root_and_health_checked(name: str) -> None:
    built = stages(name)
    assert len(built) >= 2, "build tools stay out of the runtime image"
    final = built[-1]
    users = [args for op, args in final if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the app must not run as root"
    health = [args for op, args in final if op == "HEALTHCHECK"]
    assert health and "/healthz" in health[0]
    exposed = " ".join(args for op, args in final if op == "EXPOSE").split()
    assert set(exposed) == {"8050", "8888"}, "TensorBoard is served through the app"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_path_stage_extra_and_command_a_dockerfile_names_exists(name: str) -> None:
    all_stages = stages(name)
    names = {
        args.split()[-1]
        for stage in all_stages
        for op, args in stage
        if op == "FROM" and " AS " in args
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    ignored = (ROOT / ".dockerignore").read_text().split()
    for stage in all_stages:
        for op, args in stage:
            if op == "COPY":
                parts = [p for p in shlex.split(args) if not p.startswith("--")]
                sources, source_stage = parts[:-1], None
                match = re.search(r"--from=(\S+)", args)
                if match:
                    source_stage = match.group(1)
                    assert source_stage in names, f"COPY from unknown stage {source_stage}"
                    continue
                for source in sources:
                    assert (ROOT / source).exists(), f"{name} copies missing {source}"
                    assert source not in ignored, f"{source} is excluded by .dockerignore"
            if op == "RUN":
                for extra_list in re.findall(r"'\.\[([\w,]+)\]'", args):
                    assert set(extra_list.split(",")) <= extras, f"unknown extra in {args}"
    final = all_stages[-1]
    entry = next(args for op, args in final if op == "ENTRYPOINT")
    script_copy = next(args for op, args in final if op == "COPY" and "entrypoint" in args)
    source, target = shlex.split(script_copy)[-2:]
    assert Path(target).name in entry
    assert os.access(ROOT / source, os.X_OK), f"{source} is not executable"
    command = next(args for op, args in final if op == "CMD")
    assert "aift" in command and "serve" in command


def test_the_commands_the_containers_run_exist() -> None:
    from typer.main import get_command

    from aift.cli import app

    commands = set(get_command(app).commands)  # type: ignore[attr-defined]
    lines = (ROOT / "docker" / "entrypoint.sh").read_text().splitlines()
    script = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    used = set(re.findall(r"\baift (\w+)", script)) | {"serve"}
    assert "tensorboard" in used
    assert used <= commands, used - commands
    options = {p.name for p in get_command(app).commands["tensorboard"].params}  # type: ignore[attr-defined]
    assert {"host", "port", "path_prefix"} <= options


def test_no_unauthenticated_service_is_reachable_from_the_network() -> None:
    """Issue 31: Qdrant and Ollama have no sign-in, TensorBoard none either. Nothing
    but the app's keyed ports is published; internal services talk on the compose
    network; TensorBoard binds the container's loopback and is served by the app
    (behind the key); JupyterLab takes the API key as its token."""
    for name in COMPOSE_FILES:
        raw = yaml.safe_load((ROOT / name).read_text())["services"]
        for service in ("qdrant", "ollama"):
            ports = raw.get(service, {}).get("ports", [])
            assert all(str(p).startswith("127.0.0.1:") for p in ports), (name, service, ports)
        for port in raw.get("app", {}).get("ports", []):
            assert str(port).split(":")[-1] in {"8050", "8888"}, (name, port)
    lines = (ROOT / "docker" / "entrypoint.sh").read_text().splitlines()
    script = "\n".join(line for line in lines if not line.lstrip().startswith("#"))
    tensorboard = next(line for line in lines if "aift tensorboard" in line)
    assert "--host 127.0.0.1" in tensorboard and "0.0.0.0" not in tensorboard
    assert "AIFT_TENSORBOARD_URL" in script and "--path-prefix /tensorboard" in script
    assert '--IdentityProvider.token="$AIFT_API_KEY"' in script
    assert "JUPYTER_TOKEN" not in script
    for dockerfile in DOCKERFILES:
        exposed = [
            line
            for line in (ROOT / dockerfile).read_text().splitlines()
            if line.startswith("EXPOSE")
        ]
        assert exposed and "6006" not in exposed[0], dockerfile


def test_llama_cpp_is_built_for_every_cpu_in_setup_and_both_images() -> None:
    """Issue 30: a natively compiled llama.cpp dies of SIGILL on another CPU (or on a VM
    advertising AMX it cannot run). Every build path goes through the portable script."""
    script = (ROOT / "scripts" / "llama-cpp-wheel.sh").read_text()
    for option in ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON"):
        assert option in script
    assert "--no-cache-dir" in script, "pip must never reuse a wheel built elsewhere"
    assert os.access(ROOT / "scripts" / "llama-cpp-wheel.sh", os.X_OK)
    version = re.search(r"^VERSION=(\S+)", script, re.M)
    pin = next(
        d
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        if d.startswith("llama-cpp-python")
    )
    assert version and pin == f"llama-cpp-python=={version.group(1)}"
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.index("scripts/llama-cpp-wheel.sh $(BIN)/pip") < makefile.index(
        "pip install -q -e '.[dev]'"
    ), "built before the requirements, so pip never compiles the sdist natively"
    for name in DOCKERFILES:
        runs = [args for stage in stages(name) for op, args in stage if op == "RUN"]
        build = [r for r in runs if "scripts/llama-cpp-wheel.sh" in r]
        install = [r for r in runs if "pip install '." in r]
        assert build and install and runs.index(build[0]) < runs.index(install[0]), name
        assert not any("CMAKE_ARGS" in r for r in runs), f"{name} compiles llama.cpp natively"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_a_stop_signal_reaches_every_process_of_the_container(name: str) -> None:
    entry = next(args for op, args in stages(name)[-1] if op == "ENTRYPOINT")
    assert json.loads(entry)[:2] == ["tini", "-g"]

"""Offline checks of the deployment files: docker-compose.yml, k8s/ (kustomize), Dockerfile.

Needs no Docker engine, no cluster and no network: `kubernetes-validate` and
`check-jsonschema` ship their schemas. `kubectl kustomize` (offline) renders
the overlays where kubectl is on PATH; the other k8s tests do not need it.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed")

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BASE = K8S / "base"
OVERLAYS = ("dev", "production")
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
K8S_VERSION = "1.30.0"

# Every environment variable the pipeline reads (the runtime contract).
PIPELINE_ENV_VARS = frozenset(
    {
        "KAFKA_BOOTSTRAP_SERVERS",
        "DATABASE_URL",
        "REDIS_URL",
        "PIPELINE_PARTITIONS",
        "PIPELINE_REPLICATION_FACTOR",
        "PIPELINE_TOPIC_PREFIX",
        "DEDUPE_WINDOW_HOURS",
        "RAW_RETENTION_DAYS",
        "TABLE_STORE",
        "TABLE_DATA_DIR",
        "WORKER_WEB_PORT",
        "LOG_LEVEL",
        "LOG_FORMAT",
    }
)
SECRET_ENV_VARS = frozenset({"DATABASE_URL", "REDIS_URL"})
PIPELINE_SERVICES = ("migrate", "topics", "ingress", "worker")
ONE_SHOTS = ("migrate", "topics")
# workload kind/name -> (app container, port, terminationGracePeriodSeconds)
WORKLOADS = {
    ("Deployment", "ingress"): ("ingress", 8080, 30),
    ("StatefulSet", "worker"): ("worker", 6066, 60),
}


# --------------------------------------------------------------------------- helpers


def load_docs(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def kustomization(directory: Path) -> dict[str, Any]:
    return load_docs(directory / "kustomization.yaml")[0]


def kustomize_dirs() -> list[Path]:
    return sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def patch_paths(kust: dict[str, Any]) -> list[str]:
    paths = [p["path"] for p in kust.get("patches", []) if "path" in p]
    return paths + list(kust.get("patchesStrategicMerge", []))


def resource_files() -> list[Path]:
    """Files listed under `resources:` of any kustomization: complete k8s objects."""
    files = set()
    for d in kustomize_dirs():
        for entry in kustomization(d).get("resources", []):
            path = (d / entry).resolve()
            if path.is_file():
                files.add(path)
    return sorted(files)


def resolve_objects(directory: Path) -> list[dict[str, Any]]:
    """Objects a kustomization pulls in through `resources:` (recursively), unpatched."""
    objects: list[dict[str, Any]] = []
    for entry in kustomization(directory).get("resources", []):
        path = (directory / entry).resolve()
        objects += resolve_objects(path) if path.is_dir() else load_docs(path)
    return objects


def base_object(kind: str, name: str) -> dict[str, Any]:
    matches = [
        o for o in resolve_objects(BASE) if o["kind"] == kind and o["metadata"]["name"] == name
    ]
    assert len(matches) == 1, f"expected one {kind}/{name} in k8s/base, found {len(matches)}"
    return matches[0]


def overlay_patches(overlay: str, kind: str, name: str) -> list[dict[str, Any]]:
    d = K8S / "overlays" / overlay
    docs = [doc for p in patch_paths(kustomization(d)) for doc in load_docs(d / p)]
    return [
        doc
        for doc in docs
        if doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name
    ]


def effective_config(overlay: str) -> dict[str, str]:
    """pipeline-config data after the overlay's ConfigMap patches (a plain key merge)."""
    data = dict(base_object("ConfigMap", "pipeline-config")["data"])
    for patch in overlay_patches(overlay, "ConfigMap", "pipeline-config"):
        data.update(patch.get("data", {}))
    return data


def pod_containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return pod_spec.get("initContainers", []) + pod_spec.get("containers", [])


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def env_names_in_k8s_doc(doc: dict[str, Any]) -> set[str]:
    names: set[str] = set()
    if doc.get("kind") == "ConfigMap":
        names |= set(doc.get("data", {}))
    for gen in doc.get("configMapGenerator", []) + doc.get("secretGenerator", []):
        names |= {literal.split("=", 1)[0] for literal in gen.get("literals", [])}
    for key, value in walk(doc):
        if key == "env" and isinstance(value, list):
            names |= {item["name"] for item in value}
        elif key in ("secretKeyRef", "configMapKeyRef"):
            names.add(value["key"])
    return names


@functools.cache
def render_overlay(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not on PATH: overlay rendering not checked")
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def k8s_validate(obj: dict[str, Any], where: str) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed")
    ident = f"{where}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    try:
        kv.validate(obj, K8S_VERSION, strict=True)
    except kv.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{ident} is invalid at {path}: {exc.message}")
    except kv.SchemaNotFoundError as exc:  # no CRDs here: an unknown kind is a typo
        pytest.fail(f"{ident}: {exc.message}")


@functools.cache
def compose() -> dict[str, Any]:
    return load_docs(COMPOSE_FILE)[0]


def service(name: str) -> dict[str, Any]:
    services = compose()["services"]
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def depends_on(svc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = svc.get("depends_on", {})
    if isinstance(deps, list):  # short syntax means service_started
        return {d: {"condition": "service_started"} for d in deps}
    return deps


def env_keys(svc: dict[str, Any]) -> set[str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        return {item.split("=", 1)[0] for item in env}
    return set(env)


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            rows.append((word.upper(), rest.strip()))
    return rows


# --------------------------------------------------------------------------- kustomize structure


def test_expected_kustomizations_exist() -> None:
    expected = {BASE} | {K8S / "overlays" / o for o in OVERLAYS}
    assert expected <= set(kustomize_dirs())


@pytest.mark.parametrize("directory", kustomize_dirs(), ids=lambda p: str(p.relative_to(K8S)))
def test_kustomization_paths_exist(directory: Path) -> None:
    kust = kustomization(directory)
    assert kust.get("kind") == "Kustomization"
    for entry in kust.get("resources", []):
        path = directory / entry
        assert path.is_file() or (path / "kustomization.yaml").is_file(), (
            f"missing resource {entry}"
        )
    for entry in patch_paths(kust):
        assert (directory / entry).is_file(), f"missing patch {entry}"


def test_every_yaml_under_k8s_is_used() -> None:
    used = {d / "kustomization.yaml" for d in kustomize_dirs()}
    for d in kustomize_dirs():
        kust = kustomization(d)
        used |= {(d / p).resolve() for p in kust.get("resources", []) + patch_paths(kust)}
    orphans = [p for p in K8S.rglob("*.y*ml") if p.resolve() not in used]
    assert not orphans, f"files no kustomization references: {orphans}"


def test_base_is_namespace_agnostic() -> None:
    assert "namespace" not in kustomization(BASE)
    assert [
        o["metadata"]["name"] for o in resolve_objects(BASE) if "namespace" in o["metadata"]
    ] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_sets_namespace(overlay: str) -> None:
    assert kustomization(K8S / "overlays" / overlay).get("namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_patches_target_existing_objects(overlay: str) -> None:
    d = K8S / "overlays" / overlay
    kust = kustomization(d)
    known = {(o["kind"], o["metadata"]["name"]) for o in resolve_objects(d)}
    targets = [
        (p["target"].get("kind"), p["target"].get("name"))
        for p in kust.get("patches", [])
        if "target" in p
    ]
    targets += [
        (doc["kind"], doc["metadata"]["name"])
        for p in patch_paths(kust)
        for doc in load_docs(d / p)
    ]
    assert targets, "overlay has no patches"
    missing = [t for t in targets if t not in known]
    assert not missing, f"patches target objects not in the overlay's resources: {missing}"


# --------------------------------------------------------------------------- k8s schema validation


@pytest.mark.parametrize("path", resource_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_manifest_validates_against_k8s_schema(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} is empty"
    for obj in docs:
        k8s_validate(obj, str(path.relative_to(ROOT)))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_overlay_validates(overlay: str) -> None:
    rendered = render_overlay(overlay)
    kinds = {(o["kind"], o["metadata"]["name"]) for o in rendered}
    assert set(WORKLOADS) <= kinds
    for obj in rendered:
        k8s_validate(obj, f"kustomize overlays/{overlay}")


# --------------------------------------------------------------------------- k8s invariants


def test_k8s_env_var_names_are_known() -> None:
    names: set[str] = set()
    for d in kustomize_dirs():
        names |= env_names_in_k8s_doc(kustomization(d))
    for path in K8S.rglob("*.y*ml"):
        for doc in load_docs(path):
            names |= env_names_in_k8s_doc(doc)
    assert names, "found no environment variables at all"
    assert names <= PIPELINE_ENV_VARS, f"unknown env vars: {sorted(names - PIPELINE_ENV_VARS)}"


def test_known_env_vars_are_read_by_the_settings() -> None:
    try:
        from pipeline.settings import ENV_VARS
    except ImportError as exc:
        pytest.skip(f"pipeline.settings not importable: {exc}")
    assert set(ENV_VARS) >= PIPELINE_ENV_VARS


def test_credentials_come_from_a_secret() -> None:
    for path in K8S.rglob("*.y*ml"):
        for doc in load_docs(path):
            if doc.get("kind") == "ConfigMap":
                assert not SECRET_ENV_VARS & set(doc.get("data", {})), (
                    f"credential in ConfigMap {path}"
                )
            for key, value in walk(doc):
                if key == "env" and isinstance(value, list):
                    for var in value:
                        if var["name"] in SECRET_ENV_VARS:
                            assert "secretKeyRef" in var.get("valueFrom", {}), (
                                f"{var['name']} in {path}"
                            )


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_pod_security_context(kind: str, name: str) -> None:
    pod = base_object(kind, name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 0) != 0
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for c in pod_containers(pod):
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert "ALL" in sc["capabilities"]["drop"], c["name"]
        tmp = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert tmp, f"{c['name']}: no /tmp mount"
        assert tmp[0]["name"] in empty_dirs, f"{c['name']}: /tmp must be an emptyDir"


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_containers_have_requests_and_limits(kind: str, name: str) -> None:
    pod = base_object(kind, name)["spec"]["template"]["spec"]
    for c in pod_containers(pod):
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][section]), f"{c['name']} {section}"


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_grace_period_and_probes(kind: str, name: str) -> None:
    container_name, port, grace = WORKLOADS[(kind, name)]
    pod = base_object(kind, name)["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace
    (app,) = [c for c in pod["containers"] if c["name"] == container_name]
    ports = {p.get("name"): p["containerPort"] for p in app["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = app[probe]["httpGet"]
        assert get["path"] == path, probe
        assert ports.get(get["port"], get["port"]) == port, probe


@pytest.mark.parametrize(("kind", "name"), WORKLOADS)
def test_migrate_and_topics_run_before_the_app(kind: str, name: str) -> None:
    pod = base_object(kind, name)["spec"]["template"]["spec"]
    commands = [c.get("command", []) + c.get("args", []) for c in pod.get("initContainers", [])]
    assert commands[:2] == [["migrate"], ["topics", "create"]]
    images = {c["image"] for c in pod_containers(pod)}
    assert len(images) == 1, f"init and app containers must share one image: {images}"


def test_worker_tables_on_persistent_volume() -> None:
    sts = base_object("StatefulSet", "worker")
    claims = {t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]}
    (worker,) = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    data_dir = base_object("ConfigMap", "pipeline-config")["data"]["TABLE_DATA_DIR"]
    assert data_dir == "/var/lib/pipeline/tables"
    assert mounts.get(data_dir) in claims


def test_ingress_hpa_pdbs_and_services_select_the_pods() -> None:
    hpa = base_object("HorizontalPodAutoscaler", "ingress")["spec"]
    assert hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["scaleTargetRef"]["name"] == "ingress"
    assert any(m.get("resource", {}).get("name") == "cpu" for m in hpa["metrics"])
    assert "replicas" not in base_object("Deployment", "ingress")["spec"], "the HPA owns replicas"
    sts = base_object("StatefulSet", "worker")
    assert sts["spec"]["serviceName"] == "worker"
    for kind, name in WORKLOADS:
        labels = base_object(kind, name)["spec"]["template"]["metadata"]["labels"]
        pdb = base_object("PodDisruptionBudget", name)["spec"]["selector"]["matchLabels"]
        svc = base_object("Service", name)["spec"]["selector"]
        assert pdb.items() <= labels.items(), f"PodDisruptionBudget/{name} selects no pod"
        assert svc.items() <= labels.items(), f"Service/{name} selects no pod"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_do_not_exceed_partitions(overlay: str) -> None:
    replicas = base_object("StatefulSet", "worker")["spec"].get("replicas", 1)
    for patch in overlay_patches(overlay, "StatefulSet", "worker"):
        replicas = patch.get("spec", {}).get("replicas", replicas)
    assert 1 <= replicas <= int(effective_config(overlay)["PIPELINE_PARTITIONS"])


def test_production_overlay_settings() -> None:
    config = effective_config("production")
    assert config["PIPELINE_REPLICATION_FACTOR"] == "3"
    assert config["TABLE_STORE"].startswith("rocksdb://")
    assert (
        overlay_patches("production", "HorizontalPodAutoscaler", "ingress")[0]["spec"][
            "minReplicas"
        ]
        >= 2
    )
    assert overlay_patches("production", "StatefulSet", "worker")[0]["spec"]["replicas"] >= 2


# --------------------------------------------------------------------------- docker-compose.yml


def test_compose_matches_compose_spec() -> None:
    # The schema check-jsonschema vendors, applied with `jsonschema` directly: its CLI needs a
    # newer click than faust-streaming allows, and nothing here may fetch a schema.
    spec = importlib.util.find_spec("check_jsonschema")  # located, not imported
    if spec is None or spec.origin is None:
        pytest.skip("check-jsonschema is not installed")
    import jsonschema

    vendored = Path(spec.origin).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(vendored.read_text(encoding="utf-8"))
    errors = [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(compose())]
    assert errors == []


def test_compose_has_no_version_key() -> None:
    assert "version" not in compose()


def test_kafka_is_kraft_3_9_without_auto_create() -> None:
    kafka = service("kafka")
    assert kafka["image"] == "apache/kafka:3.9.1"
    env = kafka["environment"]
    assert str(env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "broker" in env["KAFKA_PROCESS_ROLES"]


@pytest.mark.parametrize("name", ["ingress", "worker"])
def test_apps_wait_for_the_one_shots(name: str) -> None:
    deps = depends_on(service(name))
    for one_shot in ONE_SHOTS:
        assert deps.get(one_shot, {}).get("condition") == "service_completed_successfully", one_shot


def test_pipeline_services_share_one_build() -> None:
    builds = {name: service(name).get("build") for name in PIPELINE_SERVICES}
    images = {service(name).get("image") for name in PIPELINE_SERVICES}
    first = builds[PIPELINE_SERVICES[0]]
    assert first, builds
    assert all(b == first for b in builds.values()), builds
    assert len(images) == 1, images
    context = first if isinstance(first, str) else first.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(first, str) else first.get("dockerfile", "Dockerfile")
    assert (COMPOSE_FILE.parent / context).resolve() == ROOT
    assert (ROOT / context / dockerfile).is_file()
    built = {n for n, s in compose()["services"].items() if "build" in s}
    assert built == set(PIPELINE_SERVICES), "only pipeline services are built from the Dockerfile"


def test_pipeline_service_commands() -> None:
    expected = {"migrate": ["migrate"], "topics": ["topics", "create"], "worker": ["worker"]}
    for name in PIPELINE_SERVICES:
        svc = service(name)
        assert "entrypoint" not in svc, f"{name}: the image's ENTRYPOINT is `pipeline`"
        command = svc["command"]
        command = shlex.split(command) if isinstance(command, str) else command
        assert command == expected.get(name, ["ingress", "--host", "0.0.0.0", "--port", "8080"]), (
            name
        )


def test_depends_on_conditions_are_satisfiable() -> None:
    services = compose()["services"]
    for name, svc in services.items():
        for dep, spec in depends_on(svc).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec.get("condition") == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} to be healthy"
            if spec.get("condition") == "service_completed_successfully":
                assert services[dep].get("restart", "no") == "no", f"{dep} must be a one-shot"


def test_long_running_services_have_healthchecks() -> None:
    for name in ("kafka", "postgres", "redis", "ingress", "worker"):
        assert "test" in service(name).get("healthcheck", {}), name


def test_ingress_port_published() -> None:
    targets = []
    for port in service("ingress").get("ports", []):
        targets.append(str(port["target"]) if isinstance(port, dict) else str(port).split(":")[-1])
    assert "8080" in targets


def test_compose_env_var_names_are_known() -> None:
    names = set().union(*(env_keys(service(name)) for name in PIPELINE_SERVICES))
    assert names <= PIPELINE_ENV_VARS, f"unknown env vars: {sorted(names - PIPELINE_ENV_VARS)}"


# --------------------------------------------------------------------------- Dockerfile


def test_compose_worker_keeps_rocksdb_tables_on_a_volume() -> None:
    worker = service("worker")
    env = worker["environment"]
    assert env["TABLE_STORE"] == "rocksdb://"
    volumes = {v.split(":")[1]: v.split(":")[0] for v in worker["volumes"]}
    assert volumes.get(env["TABLE_DATA_DIR"]) in compose()["volumes"]


def test_dockerfile_runtime_image() -> None:
    rows = dockerfile_instructions()
    froms = [rest.split()[0] for word, rest in rows if word == "FROM"]
    assert froms, "no FROM"
    assert all(f == "python:3.11-slim" for f in froms), froms
    users = [rest for word, rest in rows if word == "USER"]
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in ("root", "0"), "must run as non-root"
    assert [rest for word, rest in rows if word == "ENTRYPOINT"][-1] == '["pipeline"]'
    runs = " ".join(rest for word, rest in rows if word == "RUN")
    assert re.search(r"""pip install --no-cache-dir ["']?\.(\[[\w,-]+\])?["']?(\s|$)""", runs)


def test_image_has_rocksdb_when_k8s_uses_it() -> None:
    stores = {effective_config(o)["TABLE_STORE"] for o in OVERLAYS}
    if "rocksdb://" in stores:
        runs = " ".join(rest for word, rest in dockerfile_instructions() if word == "RUN")
        assert re.search(r"pip install [^&;]*\.\[[\w,-]*rocksdb", runs), "install the rocksdb extra"


def test_dockerignore_excludes_local_state() -> None:
    entries = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    for required in (".git", ".venv", ".run", "**/__pycache__"):
        assert required in entries, required

"""The deployment files in configs/ (Kubernetes, systemd, Docker). Docker and a cluster
cannot run here, so this checks what can be checked: every file parses, every pounce config
in them passes --mode validate and runs, the command lines they start pounce with are
valid, probes and the preStop hook point at what the config serves, and the preStop drain
works against a real server."""

import configparser
import http.client
import json
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from admin_helpers import Admin
from conftest import ROOT, free_port, run_pounce, wait_for

K8S = ROOT / "configs/k8s"
HELLO = ROOT / "examples/hello"


def k8s_docs():
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        docs[path.name] = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    return docs


def container(kind="Deployment", name="pounce"):
    for d in k8s_docs()["deployment.yaml"]:
        if d["kind"] == kind:
            for c in d["spec"]["template"]["spec"]["containers"]:
                if c["name"] == name:
                    return d, c
    raise AssertionError(f"no {kind} container {name}")


def mapped_config(tmp_path, port=8000, admin_port=9901):
    """configs/k8s/pounce.yaml as it would run in the pod, with the app volume mapped to the
    example app here (and the ports to free ones)."""
    site = tmp_path / "site-packages"
    site.mkdir(exist_ok=True)
    shutil.copy(HELLO / "app.py", tmp_path / "app.py")
    text = (K8S / "pounce.yaml").read_text()
    text = text.replace("/app/src", str(tmp_path)).replace("/app/site-packages", str(site))
    text = text.replace("port_value: 8000", f"port_value: {port}")
    text = text.replace("port_value: 9901", f"port_value: {admin_port}")
    text = text.replace("address: 0.0.0.0", "address: 127.0.0.1")
    path = tmp_path / "pounce.yaml"
    path.write_text(text)
    return path


def test_every_kubernetes_file_parses():
    docs = k8s_docs()
    kinds = sorted(d["kind"] for name, ds in docs.items() if name != "pounce.yaml" for d in ds)
    assert kinds == ["Deployment", "Kustomization", "Service"]
    kustomization = docs["kustomization.yaml"][0]
    for resource in kustomization["resources"]:
        assert (K8S / resource).exists()
    generator = kustomization["configMapGenerator"][0]
    assert generator["name"] == "pounce-config" and generator["files"] == ["pounce.yaml"]
    assert kustomization["generatorOptions"]["disableNameSuffixHash"] is True
    config = docs["pounce.yaml"][0]
    assert config["watch_config"] is True, "ConfigMap updates must reach the server"


def test_the_configmap_config_validates_and_runs(tmp_path, pounce):
    path = mapped_config(tmp_path)
    r = run_pounce("-c", path, "--mode", "validate")
    assert r.returncode == 0, r.stderr
    port, admin_port = free_port(), free_port()
    s = pounce(None, args=["-c", str(mapped_config(tmp_path, port, admin_port))], port=port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().read() == b"Hello, world!\n"
    assert s.proc.poll() is None


def test_deployment_probes_prestop_and_mounts_match_the_config(tmp_path, pounce):
    deployment, c = container()
    config = yaml.safe_load((K8S / "pounce.yaml").read_text())
    listener = config["listeners"][0]
    health = next(f for f in listener["filter_chain"] if f["name"] == "pounce.filters.health")
    port = listener["address"]["socket_address"]["port_value"]
    assert c["ports"][0]["containerPort"] == port
    assert c["livenessProbe"]["httpGet"]["path"] == health["typed_config"]["path"]
    assert c["readinessProbe"]["httpGet"]["path"] == health["typed_config"]["ready_path"]
    # The config volume is the whole ConfigMap directory (a subPath never updates).
    config_path = c["args"][c["args"].index("--config-yaml") + 1]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    assert config_path == f"{mount['mountPath']}/pounce.yaml" and "subPath" not in mount
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "pounce-config"
    # The app volume is where the config imports the app from.
    app_mount = next(m for m in c["volumeMounts"] if m["name"] == "app")["mountPath"]
    asgi = next(f for f in listener["filter_chain"] if f["name"] == "pounce.filters.asgi")
    assert all(d.startswith(app_mount + "/") for d in asgi["typed_config"]["app_dir"])
    # preStop: the admin address of the config, an endpoint that exists, a wait; the grace
    # period covers it plus the listener's shutdown_timeout.
    command = c["lifecycle"]["preStop"]["exec"]["command"][-1]
    admin = config["admin"]["address"]["socket_address"]
    url = re.search(r"'(http://[^']+)'", command).group(1)
    assert url == (f"http://{admin['address']}:{admin['port_value']}"
                   "/drain_listeners?graceful")
    sleep = int(re.search(r"sleep (\d+)", command).group(1))
    shutdown = int(listener["http"]["shutdown_timeout"].rstrip("s"))
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > sleep + shutdown

    # The preStop command itself, against a real server.
    if shutil.which("curl") is None:
        pytest.skip("curl is needed for the preStop command")
    port, admin_port = free_port(), free_port()
    s = pounce(None, args=["-c", str(mapped_config(tmp_path, port, admin_port))], port=port)
    api = Admin(admin_port)
    wait_for(lambda: len(api.json("GET", "/server_info")["workers"]) == 2, timeout=30,
             what="both worker processes")  # as a running pod is
    hook = command.replace(str(admin["port_value"]), str(admin_port)).replace(
        f"sleep {sleep}", "sleep 0")
    assert subprocess.run(["sh", "-c", hook], timeout=30).returncode == 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", health["typed_config"]["ready_path"])
    r = conn.getresponse()
    assert r.status == 503 and json.loads(r.read())["status"] == "draining"
    assert r.getheader("connection") == "close"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", health["typed_config"]["path"])
    assert conn.getresponse().status == 200, "liveness stays up: no restart during the drain"
    s.signal(15)
    assert s.wait_exit(timeout=30) == 0


def unit():
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read(ROOT / "configs/systemd/pounce.service")
    return parser


def test_systemd_unit_runs_a_valid_command_line(tmp_path):
    service = unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0] == "/usr/local/bin/pounce"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    config = yaml.safe_load((K8S / "pounce.yaml").read_text())
    shutdown = int(config["listeners"][0]["http"]["shutdown_timeout"].rstrip("s"))
    assert int(service["TimeoutStopSec"]) > shutdown
    args = [str(mapped_config(tmp_path)) if a == "/etc/pounce/pounce.yaml" else a for a in argv[1:]]
    r = run_pounce(*args, "--mode", "validate")
    assert r.returncode == 0, r.stderr
    assert unit()["Install"]["WantedBy"] == "multi-user.target"


def dockerfile():
    text = (ROOT / "configs/docker/Dockerfile").read_text()
    return re.sub(r"\\\n\s*", " ", text).splitlines()


def test_dockerfile_copies_a_valid_config_and_starts_a_valid_command(tmp_path):
    lines = [l.strip() for l in dockerfile() if l.strip() and not l.strip().startswith("#")]
    copies = [l.split()[1:] for l in lines if l.startswith("COPY") and "--from" not in l]
    for src, dest in copies:
        if src != ".":
            assert (ROOT / src).exists(), src
            if src.endswith(".yaml"):
                assert dest == "/etc/pounce/pounce.yaml"
    entry = json.loads(next(l for l in lines if l.startswith("ENTRYPOINT"))[len("ENTRYPOINT"):])
    cmd = json.loads(next(l for l in lines if l.startswith("CMD"))[len("CMD"):])
    assert entry == ["/usr/local/bin/pounce"]
    args = [str(mapped_config(tmp_path)) if a == "/etc/pounce/pounce.yaml" else a for a in cmd]
    r = run_pounce(*args, "--mode", "validate")
    assert r.returncode == 0, r.stderr
    assert "STOPSIGNAL SIGTERM" in lines
    health = next(l for l in lines if l.startswith("HEALTHCHECK"))
    assert "/livez" in health
    # Every runtime package the final stage installs exists in Debian 12.
    final = lines[max(i for i, l in enumerate(lines) if l.startswith("FROM")):]
    install = next(l for l in final if "apt-get install" in l)
    packages = [p for p in install.split("--no-install-recommends")[1].split("&&")[0].split()]
    if shutil.which("apt-cache") is None:
        pytest.skip("apt-cache is needed to check package names")
    r = subprocess.run(["apt-cache", "show", "--no-all-versions", *packages],
                       capture_output=True, text=True, timeout=120)
    known = set(re.findall(r"^Package: (\S+)$", r.stdout, re.M))
    assert set(packages) <= known, set(packages) - known
    # The binary's shared libraries come from those packages (names checked loosely).
    assert "libpython3.11" in packages and "libtcmalloc-minimal4" in packages

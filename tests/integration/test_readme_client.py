"""The README's TAO Client section, run verbatim: the service block in this environment, the client block with
NVIDIA's unmodified client (TAO_CLIENT_VENV) against it, every job in the plugin's image as the Dockerfile builds
it (`--backend-type local-docker`, nothing of this machine mounted), once with a key and once with KEY="".
The only change made to the text is the port (a free one instead of 8000)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.integration.test_tao_client import CLIENT

pytestmark = [pytest.mark.docker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
MAGIC = b"TAO-OI-AESGCM-1\n"  # an encrypted model file (tao_siamese_oi/artifacts/crypto.py)


def client_blocks() -> tuple[str, str]:
    section = (ROOT / "README.md").read_text().split("## TAO Client\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 2, "the section has the service's block, then the client's"
    return blocks[0], blocks[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path, oi_image, docker_engine):
    if not CLIENT.exists():
        pytest.skip(f"no TAO Client at {CLIENT}; .ci/run installs nvidia-tao-client==6.26.3 there (TAO_CLIENT_VENV)")
    if not shutil.which("jq"):
        pytest.skip("the README's client block uses jq (apt-get install jq)")
    from tao_siamese_oi.plugin import PLUGIN

    repository, tag = PLUGIN.image.rsplit(":", 1)
    docker_engine.images.get(oi_image).tag(repository, tag)  # as `docker build -t tao_siamese_oi:<version> .`
    port = free_port()
    service_block, client_block = (block.replace("8000", str(port)) for block in client_blocks())
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAO_")} | {"HOME": str(home)}
    with open(tmp_path / "service.log", "w") as log:  # the service's children keep their own copy of it
        server = subprocess.Popen(["bash", "-c", service_block + "wait\n"], env=env, cwd=tmp_path,
                                  start_new_session=True, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/health", timeout=1)
            break
        except OSError:
            assert time.time() < deadline and server.poll() is None, (tmp_path / "service.log").read_text()[-3000:]
            time.sleep(0.5)
    client_env = env | {"PATH": f"{CLIENT.parent}:{env['PATH']}"}  # the client's `tao`, as in its own environment
    yield {"client_block": client_block, "env": client_env, "home": home, "port": port, "docker": docker_engine}
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)


@pytest.mark.parametrize("keyed", [True, False], ids=["with a key", "KEY=''"])
def test_the_readmes_client_flow_runs_verbatim_in_the_image(served, tmp_path, keyed):
    block = served["client_block"]
    if not keyed:  # as the README's comment says to
        block, replaced = re.subn(r"(?m)^KEY=\S+", 'KEY=""', block)
        assert replaced == 1
    work = tmp_path / "client"
    work.mkdir()
    since = int(time.time())
    script = block + 'echo "IDS $TRAIN $EVAL $INFER $EXPORT $MS"\n'
    done = subprocess.run(["bash", "-c", script], cwd=work, env=served["env"], capture_output=True, text=True,
                          timeout=1500)  # fmt: skip
    output = done.stdout + done.stderr
    ids = next(line for line in done.stdout.splitlines() if line.startswith("IDS ")).split()[1:]
    assert len(ids) == 5, output[-4000:]
    train, evaluate, infer, export, microservice = ids
    for job in (train, evaluate, infer, export):
        assert f"{job} Done" in done.stdout, output[-4000:]

    state = served["home"] / ".local" / "state" / "tao_launcher" / "acme"
    checkpoint = (state / train / "results" / "train" / "oi_model_latest.pth").read_bytes()
    assert checkpoint.startswith(MAGIC) == keyed
    assert (state / export / "results" / "export" / "oi_model.onnx").read_bytes().startswith(MAGIC) == keyed
    metrics = json.loads((work / "downloads" / evaluate / "evaluate" / "metrics.json").read_text())
    assert 0.0 <= metrics["auroc"] <= 1.0
    with tarfile.open(work / "downloads" / f"{export}.tar.gz") as tar:
        assert {"export/oi_model.onnx", "export/oi_model.json", "export/status.json"} <= set(tar.getnames())

    events = served["docker"].events(since=since, until=int(time.time()) + 1, decode=True,
                                     filters={"type": "container", "event": "create"})  # fmt: skip
    images = [e["Actor"]["Attributes"]["image"] for e in events]
    assert images.count("tao_siamese_oi:0.1.0") == 4, images  # every job ran in the plugin's image

    deadline = time.time() + 120
    while True:  # the microservice the block started, asked through the client
        asked = subprocess.run([str(CLIENT), "optical_inspection", "get-inference-microservice-status",
                                "--microservice-job-id", microservice, "--output", "json"], env=served["env"],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
        status = json.loads(asked.stdout)["status"]
        if status != "Starting" or time.time() > deadline:
            break
        time.sleep(1)
    assert status == "Ready"

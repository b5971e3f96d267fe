"""A hostile tenant against the job service: two orgs, acme and evil, over HTTP. Each case asserts the status
code and that nothing appeared in, changed in or was read from evil's folder (snapshots before and after)."""

import os
import time
from pathlib import Path

import pytest
from test_service import API, KEY, client, create_job, login, settings, site, wait_for  # noqa: F401 - fixtures

pytest.importorskip("fastapi", reason="the job service needs tao-launcher[service]")

ACME, EVIL = "factory_a", "factory_b"
EVIL_SECRET = "evil's own data, never to be read by acme"


def snapshot(root: Path) -> dict:
    """Every file, folder and link under root, with its size and modification time, and a file's access time (a
    read moves it: the secret's is set in the past; a link's moves when it is merely resolved)."""
    found = {}
    for p in sorted(root.rglob("*")):
        stat = p.lstat()
        found[str(p.relative_to(root))] = (stat.st_size, stat.st_mtime_ns, None if p.is_symlink() else stat.st_atime_ns)
    return found


@pytest.fixture
def walls(client, settings):  # noqa: F811 - the fixtures imported above
    """acme's token, evil's data (a file acme's jobs must never read) and evil's jobs' folder."""
    evil_data = settings.data_root / EVIL
    (evil_data / "secret.txt").write_text(EVIL_SECRET)
    (evil_data / "outputs").mkdir()
    evil = login(client, EVIL)
    evil_job = create_job(client, evil, org=EVIL, specs={"train": {"sleep": 0.0, "epochs": 1}})
    wait_for(client, EVIL, evil, evil_job, ("Done",))
    acme_data = settings.data_root / ACME
    (acme_data / "link_to_evil").symlink_to(evil_data)  # a link inside acme's data that leads out of it
    (acme_data / "mine.txt").write_text("acme's data")
    os.utime(evil_data / "secret.txt", (1_000_000_000, 1_000_000_000))  # a read would move the access time
    evil_root = settings.data_root / EVIL, settings.state_dir / EVIL
    return {"acme": login(client, ACME), "evil": evil, "evil_job": evil_job, "evil_roots": evil_root}


def evil_paths(settings, walls) -> dict[str, str]:  # noqa: F811
    evil_data = settings.data_root / EVIL
    return {
        "data": str(evil_data / "secret.txt"),
        "outputs": str(evil_data / "outputs"),
        "job": str(settings.state_dir / EVIL / walls["evil_job"] / "results"),
        "dotdot": f"{settings.data_root / ACME}/../{EVIL}/secret.txt",
        "link": str(settings.data_root / ACME / "link_to_evil" / "secret.txt"),
    }


# (case, specs given by acme: a function of evil's paths, the error line's start); every one is refused with 400
REFUSED_SPECS = [
    ("absolute path to evil's data", lambda p: {"data": {"a": p["data"]}}, "specs key 'data.a': "),
    ("'..' out of acme's data", lambda p: {"data": {"a": p["dotdot"]}}, "specs key 'data.a': "),
    ("a symlink in acme's data", lambda p: {"data": {"a": p["link"]}}, "specs key 'data.a': "),
    (
        "evil's job folder",
        lambda p: {"evaluate": {"model": p["job"] + "/train/model.pth"}},
        "specs key 'evaluate.model",
    ),
    ("a relative path out of the job", lambda p: {"data": {"a": "../../../data/factory_b/secret.txt"}}, "specs key"),
    ("oc.env resolver", lambda p: {"data": {"a": "${oc.env:HOME}/x"}}, "specs key 'data.a': '${oc.env:HOME}'"),
    ("oc.env in a key that is no path", lambda p: {"train": {"name": "${oc.env:TAO_SERVICE_API_KEY}"}}, "specs key"),
    ("oc.decode resolver", lambda p: {"train": {"name": "${oc.decode:'[1]'}"}}, "specs key 'train.name'"),
    ("a reference up out of results_dir", lambda p: {"data": {"a": "${results_dir}/../../../../" + EVIL}}, "specs"),
    ("a reference to a key holding evil's path", lambda p: {"x": p["data"], "data": {"a": "${x}"}}, "specs key"),
    ("a reference cycle", lambda p: {"data": {"a": "${data.b}", "b": "${data.a}"}}, "specs key 'data.a'"),
    ("a reference to no key", lambda p: {"data": {"a": "${nowhere}/x"}}, "specs key 'data.a': ${nowhere} names"),
]


@pytest.mark.parametrize("case, specs, message", REFUSED_SPECS, ids=[c[0] for c in REFUSED_SPECS])
def test_spec_paths_outside_the_job_are_refused(client, settings, walls, case, specs, message):  # noqa: F811
    before = {root: snapshot(root) for root in walls["evil_roots"]}
    acme_before = snapshot(settings.state_dir / ACME) if (settings.state_dir / ACME).exists() else {}
    body = {"network_arch": "fake_task", "action": "train", "specs": specs(evil_paths(settings, walls))}
    refused = client.post(f"{API}/orgs/{ACME}/jobs", headers=walls["acme"], json=body)
    assert refused.status_code == 400, refused.text
    error = refused.json()
    assert set(error) == {"error_desc", "error_code"} and error["error_code"] == 400
    assert error["error_desc"].startswith(message) and "\n" not in error["error_desc"]
    assert EVIL_SECRET not in refused.text
    assert {root: snapshot(root) for root in walls["evil_roots"]} == before
    after = snapshot(settings.state_dir / ACME) if (settings.state_dir / ACME).exists() else {}
    assert after == acme_before  # a refused job leaves no folder


def test_output_keys_are_bound_by_the_service_not_the_client(client, settings, walls):  # noqa: F811
    """acme names evil's folders as its outputs: the job is accepted, writes only into its own folder."""
    paths = evil_paths(settings, walls)
    before = {root: snapshot(root) for root in walls["evil_roots"]}
    train = {"sleep": 0.0, "epochs": 1, "results_dir": paths["outputs"], "out": paths["outputs"] + "/x"}
    specs = {
        "results_dir": paths["outputs"],
        "train": train,
        "data": {"mine": str(settings.data_root / ACME / "mine.txt")},
    }
    job = create_job(client, walls["acme"], org=ACME, specs=specs)
    assert wait_for(client, ACME, walls["acme"], job, ("Done", "Error"))["status"] == "Done"
    log = client.get(f"{API}/orgs/{ACME}/jobs/{job}:logs", headers=walls["acme"]).text
    assert "read mine acme's data" in log and paths["outputs"] not in log
    assert (settings.state_dir / ACME / job / "results" / "train" / "model.pth").is_file()
    assert {root: snapshot(root) for root in walls["evil_roots"]} == before


def test_a_spec_changed_on_disk_after_creation_is_checked_again_before_the_task_starts(client, settings, walls):  # noqa: F811
    """The wrapper checks the written spec once more: a symlink swapped in between is refused, the task never
    runs and evil's file is not read."""
    target = settings.data_root / ACME / "swap"
    target.mkdir()
    (target / "file.txt").write_text("fine")
    specs = {"train": {"sleep": 0.0, "epochs": 1}, "data": {"a": str(target / "file.txt")}}
    body = {"network_arch": "fake_task", "action": "train", "specs": specs}
    job_id = client.post(f"{API}/orgs/{ACME}/jobs", headers=walls["acme"], json=body).json()["id"]
    wait_for(client, ACME, walls["acme"], job_id, ("Done",))
    # the same spec, the folder now a link to evil's data: a resume runs the job again in its folder
    (target / "file.txt").unlink()
    target.rmdir()
    target.symlink_to(settings.data_root / EVIL)
    os.symlink(settings.data_root / EVIL / "secret.txt", settings.data_root / EVIL / "file.txt")
    before = snapshot(settings.data_root / EVIL)
    from tao_launcher.service.run_and_record import main as wrapper

    job_dir = settings.state_dir / ACME / job_id
    code = wrapper([str(job_dir / "exit_code"), "sh", "-c", f"cat {target / 'file.txt'}"])
    assert code == 2 and (job_dir / "exit_code").read_text() == "2\n"
    assert snapshot(settings.data_root / EVIL) == before
    # walls.json itself damaged (code in an earlier run of the job could write it): refused the same way
    for damaged in ('{"spec": 3}', "[]", "{not json"):
        (job_dir / "walls.json").write_text(damaged)
        assert wrapper([str(job_dir / "exit_code"), "sh", "-c", f"cat {target / 'file.txt'}"]) == 2


REFUSED_ENV = [
    ({"OPENSSL_CONF": "/tmp/evil.cnf"}, "--env name 'OPENSSL_CONF' is not allowed; use one of FAKE_MODE"),
    ({"LD_PRELOAD": "/tmp/x.so"}, "--env name 'LD_PRELOAD' is not allowed"),
    ({"ld_preload": "/tmp/x.so"}, "--env name 'ld_preload' is not allowed"),
    ({"PYTHONSTARTUP": "/tmp/x.py"}, "--env name 'PYTHONSTARTUP' is not allowed"),
    ({"TAO_JOB_ENCRYPTION_KEY": "x"}, "--env name 'TAO_JOB_ENCRYPTION_KEY' is not allowed"),
    ({"TAO_JOB_SECRET_FILE": "/tmp/x"}, "--env name 'TAO_JOB_SECRET_FILE' is not allowed"),
    ({"BASH_ENV": "/tmp/x"}, "--env name 'BASH_ENV' is not allowed"),
    ({"A B": "1"}, "--env name 'A B' is not allowed"),
    ({"JOB_VAR_lower": "1"}, "--env name 'JOB_VAR_lower' is not allowed"),
    ({"JOB_VAR_X": "two\nlines"}, "--env JOB_VAR_X: the value must be text"),
    ({"JOB_VAR_X": "nul\x00"}, "--env JOB_VAR_X: the value must be text"),
    ({"JOB_VAR_X": 3}, "--env JOB_VAR_X: the value must be text"),
    ({"JOB_VAR_X": ["a"]}, "--env JOB_VAR_X: the value must be text"),
    ({"JOB_VAR_X": "x" * 5000}, "--env JOB_VAR_X: the value must be text of at most 4096"),
]


@pytest.mark.parametrize("env, message", REFUSED_ENV, ids=[repr(next(iter(e)))[:30] for e, _ in REFUSED_ENV])
def test_environment_variables_pass_by_allow_list_only(client, settings, walls, env, message):  # noqa: F811
    body = {"network_arch": "fake_task", "action": "train", "specs": {}, "docker_env_vars": env}
    refused = client.post(f"{API}/orgs/{ACME}/jobs", headers=walls["acme"], json=body)
    assert refused.status_code == 400 and refused.json()["error_desc"].startswith(message), refused.text
    assert not (settings.state_dir / ACME).exists() or not list((settings.state_dir / ACME).iterdir())


def test_the_openssl_conf_attack_runs_no_code(client, settings, walls, tmp_path):  # noqa: F811
    """The reported attack: a config file of the tenant's choosing loaded by OpenSSL at start-up."""
    marker = tmp_path / "pwned"
    conf = settings.data_root / ACME / "evil.cnf"
    conf.write_text(f"openssl_conf = x\n[x]\n.include {marker}\n")
    body = {"network_arch": "fake_task", "action": "train", "specs": {}, "docker_env_vars": {"OPENSSL_CONF": str(conf)}}
    assert client.post(f"{API}/orgs/{ACME}/jobs", headers=walls["acme"], json=body).status_code == 400
    time.sleep(0.5)
    assert not marker.exists() and not list((settings.state_dir).glob(f"{ACME}/*"))


def test_evil_s_ids_are_not_found_for_acme(client, settings, walls):  # noqa: F811
    """Parents, datasets, published models, files, downloads, microservices: another org's id is a 404."""
    acme, evil_job = walls["acme"], walls["evil_job"]
    workspace = {"name": "w", "cloud_type": "self_hosted"}
    evil_workspace = client.post(f"{API}/orgs/{EVIL}/workspaces", headers=walls["evil"], json=workspace).json()["id"]
    dataset = {"workspace": evil_workspace, "cloud_file_path": "secret.txt"}
    evil_dataset = client.post(f"{API}/orgs/{EVIL}/datasets", headers=walls["evil"], json=dataset).json()["id"]
    before = {root: snapshot(root) for root in walls["evil_roots"]}
    job = {"network_arch": "fake_task", "action": "evaluate", "specs": {}}
    requests = [
        ("post", f"/orgs/{ACME}/jobs", {**job, "parent_job_id": evil_job}, 404),
        ("post", f"/orgs/{ACME}/jobs", {**job, "eval_dataset": evil_dataset}, 404),
        ("post", f"/orgs/{ACME}/jobs", {**job, "train_datasets": [evil_dataset]}, 404),
        ("post", f"/orgs/{ACME}/datasets", {"workspace": evil_workspace, "cloud_file_path": "secret.txt"}, 404),
        ("post", f"/orgs/{ACME}/inference_microservices:start", {"model_path": evil_job}, 404),
        ("post", f"/orgs/{ACME}/inference_microservices:start", {"parent_job_id": evil_job}, 404),
        ("get", f"/orgs/{ACME}/inference_microservices/{evil_job}:status", None, 404),
        ("post", f"/orgs/{ACME}/inference_microservices/{evil_job}:inference", {"input": "x"}, 404),
        ("delete", f"/orgs/{ACME}/inference_microservices/{evil_job}:stop", None, 404),
        ("get", f"/orgs/{ACME}/jobs/{evil_job}", None, 404),
        ("get", f"/orgs/{ACME}/jobs/{evil_job}:logs", None, 404),
        ("get", f"/orgs/{ACME}/jobs/{evil_job}:download", None, 404),
        ("get", f"/orgs/{ACME}/jobs/{evil_job}:list_files", None, 404),
        ("post", f"/orgs/{ACME}/jobs/{evil_job}:cancel", {}, 404),
        ("post", f"/orgs/{ACME}/jobs/{evil_job}:resume", {}, 404),
        ("post", f"/orgs/{ACME}/jobs/{evil_job}:publish_model", {}, 404),
        ("get", f"/orgs/{EVIL}/jobs/{evil_job}", None, 401),  # acme's token for evil's org
        ("get", f"/orgs/{EVIL}/jobs/{evil_job}:download", None, 401),
    ]
    for method, route, body, status in requests:
        answer = getattr(client, method)(API + route, headers=acme, **({"json": body} if body is not None else {}))
        assert answer.status_code == status, (route, answer.text)
        assert EVIL_SECRET not in answer.text and set(answer.json()) == {"error_desc", "error_code"}
    assert {root: snapshot(root) for root in walls["evil_roots"]} == before


def test_downloads_stay_inside_the_job(client, settings, walls):  # noqa: F811
    acme = walls["acme"]
    job = create_job(client, acme, org=ACME, specs={"train": {"sleep": 0.0, "epochs": 1}})
    wait_for(client, ACME, acme, job, ("Done",))
    results = settings.state_dir / ACME / job / "results"
    (results / "train" / "evil_link").symlink_to(settings.data_root / EVIL / "secret.txt")
    for names in (["../spec.yaml"], ["train/evil_link"], [f"../../../../data/{EVIL}/secret.txt"]):
        answer = client.get(f"{API}/orgs/{ACME}/jobs/{job}:download_selective_files", headers=acme,
                            params={"file_lists": names})  # fmt: skip
        assert answer.status_code == 404 and EVIL_SECRET.encode() not in answer.content, names
    whole = client.get(f"{API}/orgs/{ACME}/jobs/{job}:download", headers=acme)
    assert whole.status_code == 200 and EVIL_SECRET.encode() not in whole.content


def test_a_job_gets_its_own_key_never_the_services_secret(client, settings, walls):  # noqa: F811
    """The job's key is sealed with a secret of the job's own, removed once the wrapper has read it; the
    service's secret (which opens every org's keys) is named nowhere in the job's environment."""
    acme = walls["acme"]
    secret_file = settings.state_dir / "service.secret"
    job = create_job(client, acme, org=ACME, encryption_key="acme-key-7781", specs={
        "train": {"sleep": 0.0, "epochs": 1}, "print_env": "TAO_JOB_SECRET_FILE"})  # fmt: skip
    wait_for(client, ACME, acme, job, ("Done",))
    log = client.get(f"{API}/orgs/{ACME}/jobs/{job}:logs", headers=acme).text
    assert "key sha256 " in log and "key sha256 None" not in log  # the task got its key
    assert "env TAO_JOB_SECRET_FILE=\n" in log and str(secret_file) not in log
    # the wrapper's environment (readable by code in the job) names the job's own secret, removed by now
    assert f"wrapper secret file {settings.state_dir / ACME / job / '.job_secret'}" in log
    job_dir = settings.state_dir / ACME / job
    assert not (job_dir / ".job_secret").exists()  # read once, removed
    assert secret_file.read_bytes() not in b"".join(p.read_bytes() for p in job_dir.rglob("*") if p.is_file())


@pytest.fixture
def org_users(tmp_path_factory):
    """Two system users, one per org (created once; the service must run as root to start jobs as them), and an
    interpreter they can run (``--job-python``): this one's own may live in root's private home."""
    import shutil
    import subprocess
    import sys
    import sysconfig
    import tempfile

    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd: the service starts each org's jobs as its own system user")
    users = {ACME: "oi_walls_acme", EVIL: "oi_walls_evil"}
    for user in users.values():
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", user], capture_output=True)
    base = Path(tempfile.mkdtemp(prefix="oi-walls-"))  # pytest's own tmp folders are private to root
    base.chmod(0o755)
    python = sys.executable
    if subprocess.run(["runuser", "-u", users[ACME], "--", python, "-c", "1"], capture_output=True).returncode:
        system = shutil.which(f"python{sys.version_info.major}.{sys.version_info.minor}", path="/usr/bin")
        if system is None:
            pytest.skip(f"{python} cannot be run by another user and there is no system Python of its version")
        subprocess.run([system, "-m", "venv", "--without-pip", str(base / "venv")], check=True)
        ours = sysconfig.get_paths()["purelib"]  # this environment's packages (editable installs too)
        packages = next((base / "venv" / "lib").glob("python*")) / "site-packages"
        (packages / "ours.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
        python = str(base / "venv" / "bin" / "python")
    # Run from the neutral base folder: from the checkout, the launcher's source in the working directory would be
    # imported instead of the interpreter's own packages, and a job (which runs in its own folder) would not find it.
    probe = "import tao_launcher.cli, tao_launcher.service.run_and_record"
    usable = subprocess.run(["runuser", "-u", users[ACME], "--", python, "-c", probe], capture_output=True, text=True,
                            cwd=base)  # fmt: skip
    if usable.returncode != 0:
        pytest.skip(f"no interpreter with tao_launcher that another user can run: {usable.stderr.strip()[-200:]}")
    yield {"users": users, "python": python, "base": base}
    shutil.rmtree(base, ignore_errors=True)


def test_with_a_user_per_org_a_tenants_own_code_cannot_read_another_orgs_files(org_users, monkeypatch):
    """Defence in depth for local jobs (tao serve --run-jobs-as ORG=USER): code a tenant gets to run in its job
    (here the plugin reads paths the tenant names in JOB_VAR_PROBES, past every check of the service) runs as
    the org's user and cannot read evil's data, evil's jobs, the service's secret or its database."""
    import shutil

    from fastapi.testclient import TestClient
    from tao_launcher.service.app import ServiceSettings, create_app
    from test_service import FAKE_PLUGIN

    base, users = org_users["base"], org_users["users"]
    try:
        site = base / "site"
        (site / "fakesvc-1.0.dist-info").mkdir(parents=True)
        (site / "fakesvc.py").write_text(FAKE_PLUGIN)
        (site / "fakesvc-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: fakesvc\nVersion: 1.0\n")
        (site / "fakesvc-1.0.dist-info" / "entry_points.txt").write_text(
            "[tao_launcher.plugins]\nfake_task = fakesvc:PLUGIN\n"
        )
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.setenv("PYTHONPATH", str(site))
        monkeypatch.setenv("TAO_LAUNCHER_PLUGINS", "fake_task")
        data, state = base / "data", base / "state"
        for org, user in users.items():  # the admin gives each org's data to its user (docs/job_service.md)
            (data / org).mkdir(parents=True)
            (data / org / "secret.txt").write_text(f"{org}'s data")
            shutil.chown(data / org, user)
            shutil.chown(data / org / "secret.txt", user)
            (data / org).chmod(0o700)
        settings = ServiceSettings(data_root=data, state_dir=state, api_keys={"*": KEY}, job_users=users,
                                   job_python=org_users["python"])  # fmt: skip
        client = TestClient(create_app(settings))
        evil, acme = login(client, EVIL), login(client, ACME)
        evil_job = create_job(
            client, evil, org=EVIL, encryption_key="evil-key-1", specs={"train": {"sleep": 0.0, "epochs": 1}}
        )
        wait_for(client, EVIL, evil, evil_job, ("Done",))
        probes = [data / EVIL / "secret.txt", state / EVIL / evil_job / "spec.yaml", state / "service.secret",
                  state / "service.db", data / ACME / "secret.txt"]  # fmt: skip
        one_epoch = {"train": {"sleep": 0.0, "epochs": 1}}
        job = create_job(client, acme, org=ACME, encryption_key="acme-key-2", specs=one_epoch,
                         docker_env_vars={"JOB_VAR_PROBES": ",".join(map(str, probes))})  # fmt: skip
        assert wait_for(client, ACME, acme, job, ("Done", "Error"))["status"] == "Done"
        log = client.get(f"{API}/orgs/{ACME}/jobs/{job}:logs", headers=acme).text
        for denied in probes[:-1]:
            assert f"probe {denied} denied PermissionError" in log, log
        assert f"probe {probes[-1]} read" in log  # its own org's data: readable
        assert "key sha256 " in log and "key sha256 None" not in log  # its key reached it without the secret
        owner = (state / ACME / job).stat()
        assert owner.st_uid == __import__("pwd").getpwnam(users[ACME]).pw_uid and owner.st_mode & 0o777 == 0o700
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_how_a_local_job_runs_is_not_the_clients_to_say(client, settings, walls, tmp_path):  # noqa: F811
    """backend_details naming an interpreter or a user of the client's choosing changes nothing."""
    marker = tmp_path / "ran"
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\ntouch {marker}\n")
    fake_python.chmod(0o755)
    backend = {"backend_type": "local", "python": str(fake_python), "user": "root"}
    job = create_job(client, walls["acme"], org=ACME, specs={"train": {"sleep": 0.0, "epochs": 1}},
                     backend_details=backend)  # fmt: skip
    assert wait_for(client, ACME, walls["acme"], job, ("Done", "Error"))["status"] == "Done"
    assert not marker.exists()

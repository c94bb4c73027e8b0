"""A grading cluster only the course can use, and what the grader believes of it
(``course.grading.certificates``, ``roles``, ``cluster``), with real ``dask scheduler`` and
``dask worker`` processes and real clients:

* the course's certificates are made once, keys private, each naming its role;
* the grader refuses a plain ``tcp://`` cluster off loopback unless told ``--insecure``, and a
  scheduler that does not prove a scheduler certificate or does not gate roles;
* a client and a worker without a certificate of the course's CA, with another course's, with
  a look-alike that copies the course's but is signed by no CA of the course, or with the
  course's certificate of another role, neither connect nor join; the course's own do;
* a worker holding the course's worker certificate that answers with an object of its choosing
  (a result, an error, events, a forged report) runs nothing in the grader's process and costs
  only those submissions ("grading failed (grader)"); its classmates keep their grades. The
  same worker does run its code in a plain Dask client: the attack is real.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grading import rogue_worker
from grading.scale import fixed_seeds

from course.assignment import cells
from course.grading import batch, certificates, cluster, sandbox, submission

pytestmark = pytest.mark.slow

ROGUE = Path(__file__).with_name("rogue_worker.py")
LIMITS = sandbox.Limits(wall=30.0)
GRADER_FAILED = "grading failed (grader): "
#: How long a process may take to do what the test waits for (start, fail, exit): a bound on
#: waiting on a loaded machine, never a measure of anything.
PATIENCE = 180.0


# ----------------------------------------------------------------------------- helpers
def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {PATIENCE:g} s for {what}")
        time.sleep(0.2)


def _dask_security(ca: Path, certificate: Path, key: Path) -> Any:
    from distributed import Security

    return Security(require_encryption=True, tls_ca_file=str(ca),
                    tls_client_cert=str(certificate), tls_client_key=str(key))


def _lookalike(folder: Path, role: str, into: Path) -> tuple[Path, Path]:
    """A certificate that copies the course's ``role`` certificate (subject, issuer name,
    serial number, validity, role and usages) on a key of its own, signed by that key: what
    an attacker who saw the course's certificate could make without its CA's key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    real = x509.load_pem_x509_certificate(certificates.certificate_file(folder, role)
                                          .read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.issuer)
               .public_key(key.public_key()).serial_number(real.serial_number)
               .not_valid_before(real.not_valid_before_utc)
               .not_valid_after(real.not_valid_after_utc))
    for extension in real.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    into.mkdir(mode=0o700, exist_ok=True)
    certificate, private = into / f"{role}.pem", into / f"{role}-key.pem"
    certificate.write_bytes(builder.sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM))
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    return certificate, private


def _tls(ca: Path, certificate: Path, key: Path) -> list[str]:
    return ["--tls-ca-file", str(ca), "--tls-cert", str(certificate), "--tls-key", str(key)]


def _registered(log: str) -> set[str]:
    """The worker names a scheduler's log says it registered."""
    return {line.rsplit("name: ", 1)[1].strip() for line in log.splitlines()
            if "Register worker" in line and "name: " in line}


def _scheduler_log(running: cluster.LocalCluster) -> str:
    return (running.log / "scheduler.log").read_text()


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.LocalCluster]:
    """The course's cluster as the guide starts it (TLS, the role gate), with no worker yet."""
    with cluster.local(workers=0, log=tmp_path_factory.mktemp("gate-logs")) as running:
        yield running


@pytest.fixture(scope="module")
def grader(gate: cluster.LocalCluster) -> Iterator[Any]:
    with gate.connect() as client:
        yield client


@pytest.fixture(scope="module")
def other_course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another course's CA and certificates: real, and signed, but not by this course."""
    folder = tmp_path_factory.mktemp("other-course") / "certificates"
    certificates.make(folder)
    return folder


# ----------------------------------------------------------------------------- certificates
def test_the_documented_command_makes_a_ca_and_a_private_certificate_per_role(
        tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID

    folder = tmp_path / "certificates"
    done = subprocess.run([sys.executable, "-m", "course.grading.certificates", "make",
                           str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert folder.stat().st_mode & 0o777 == 0o700
    ca = x509.load_pem_x509_certificate(certificates.certificate_file(folder, "ca").read_bytes())
    usages = {}
    for name in ("ca", *certificates.ROLES):
        assert certificates.key_file(folder, name).stat().st_mode & 0o777 == 0o600, name
        assert certificates.certificate_file(folder, name).stat().st_mode & 0o077 == 0o044
        if name == "ca":
            continue
        made = x509.load_pem_x509_certificate(
            certificates.certificate_file(folder, name).read_bytes())
        made.verify_directly_issued_by(ca)  # raises unless the course's CA signed it
        unit = made.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)
        assert [a.value for a in unit] == [name]
        usages[name] = set(made.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    client, server = ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH
    assert usages == {"grader": {client}, "worker": {client, server},
                      "scheduler": {client, server}}
    for line in ("scheduler: ", "worker: ", "grader: ", "ca: "):
        assert line in done.stdout

    again = subprocess.run([sys.executable, "-m", "course.grading.certificates", "make",
                            str(folder)], capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "not an empty folder" in again.stderr
    assert ca == x509.load_pem_x509_certificate(
        certificates.certificate_file(folder, "ca").read_bytes()), "the CA was replaced"


def test_a_key_other_accounts_can_read_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "certificates"
    certificates.make(folder)
    assert certificates.credentials(folder, "grader").key.is_file()
    certificates.key_file(folder, "grader").chmod(0o644)
    with pytest.raises(cluster.ClusterError, match="can be read by other accounts"):
        cluster.security_for("tls://127.0.0.1:8786", certificates=folder)
    with pytest.raises(cluster.ClusterError, match="make certificates"):
        cluster.security_for("tls://127.0.0.1:8786", certificates=tmp_path / "none")


# ----------------------------------------------------------------------------- plain TCP
def test_a_plain_cluster_off_loopback_is_refused_unless_insecure_is_said(
        scale_notebooks: dict[str, Path]) -> None:
    address = "tcp://192.0.2.7:8786"  # TEST-NET-1: never reached, the refusal comes first
    done = subprocess.run([sys.executable, "-m", "course.grading.grade",
                           str(scale_notebooks["release"]), "--cluster", address],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert f"refusing {address}" in done.stderr and "--insecure" in done.stderr
    assert "tls://192.0.2.7:8786" in done.stderr and done.stdout == ""

    for refused in (address, "192.0.2.7:8786", "ws://127.0.0.1:8786"):
        with pytest.raises(cluster.ClusterError):
            cluster.security_for(refused, log=io.StringIO())
    said = io.StringIO()
    assert cluster.security_for(address, insecure=True, log=said) is None
    assert "anyone who can reach it" in said.getvalue()
    said = io.StringIO()
    assert cluster.security_for("tcp://127.0.0.1:8786", log=said) is None
    assert "every account of this machine" in said.getvalue()


# ----------------------------------------------------------------------------- the scheduler
def _start_scheduler(folder: Path, role: str, gated: bool, into: Path
                     ) -> tuple[subprocess.Popen[bytes], str]:
    into.mkdir(parents=True, exist_ok=True)
    found = into / "scheduler.json"
    argv = [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
            "--no-dashboard", "--scheduler-file", str(found),
            *certificates.credentials(folder, role).dask_options()]
    if gated:
        argv += ["--preload", "course.grading.roles"]
    with open(into / "scheduler.log", "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=into,
                                   start_new_session=True)
    address: list[str] = []

    def started() -> bool:
        assert process.poll() is None, (into / "scheduler.log").read_text()
        with contextlib.suppress(OSError, ValueError, KeyError):
            address.append(json.loads(found.read_text())["address"])
        return bool(address)

    _wait_for(started, "a scheduler to start")
    return process, address[0]


@pytest.mark.parametrize(("role", "gated", "refusal"), [
    ("scheduler", False, "does not check the roles"),
    ("worker", True, "is not the course's scheduler"),
    ("scheduler", True, None),
])
def test_the_grader_uses_only_a_scheduler_that_proves_its_role_and_gates_roles(
        gate: cluster.LocalCluster, tmp_path: Path, role: str, gated: bool,
        refusal: str | None) -> None:
    process, address = _start_scheduler(gate.certificates, role, gated, tmp_path)
    try:
        if refusal is None:  # the control: the guide's scheduler is accepted
            with cluster.connect(address, certificates=gate.certificates) as client:
                assert client.scheduler_info()["address"] == address
        else:
            with pytest.raises(cluster.ClusterError, match=refusal):
                cluster.connect(address, certificates=gate.certificates)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ----------------------------------------------------------------------------- clients
def _bare_tls(address: str, ca: Path) -> bytes | str:
    """What a TLS client without any certificate gets from the scheduler: its bytes, or the
    error that ended the connection."""
    host, port = address.removeprefix("tls://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca))
    context.check_hostname = False
    try:
        with socket.create_connection((host, int(port)), timeout=60) as raw, \
                context.wrap_socket(raw) as tls:
            tls.sendall(b"\x00" * 64)
            return tls.recv(1024)
    except (ssl.SSLError, OSError) as error:
        return str(error)


def _clients(grader: Any) -> set[str]:
    return set(grader.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.clients)))


def test_a_client_without_a_certificate_of_the_course_cannot_connect(
        gate: cluster.LocalCluster, grader: Any, other_course: Path, tmp_path: Path) -> None:
    from distributed import Client

    course = gate.certificates
    ca = certificates.certificate_file(course, "ca")
    before = _clients(grader)
    lookalike = _lookalike(course, "grader", tmp_path / "lookalike")
    attempts = {
        "plain tcp": (gate.address.replace("tls://", "tcp://"), None),
        "another course's grader certificate": (gate.address, _dask_security(
            ca, certificates.certificate_file(other_course, "grader"),
            certificates.key_file(other_course, "grader"))),
        "a look-alike of the course's grader certificate": (
            gate.address, _dask_security(ca, *lookalike)),
        "the course's worker certificate": (gate.address, _dask_security(
            ca, certificates.certificate_file(course, "worker"),
            certificates.key_file(course, "worker"))),
    }
    for what, (address, security) in attempts.items():
        with pytest.raises((OSError, TimeoutError)):
            Client(address, security=security, timeout=20)
            pytest.fail(f"a client with {what} connected")
    answered = _bare_tls(gate.address, ca)
    assert not isinstance(answered, bytes) or answered == b"", answered
    assert _clients(grader) == before, "a refused client is known to the scheduler"

    # the control: the same code with the course's grader certificate connects
    with Client(gate.address, security=_dask_security(
            ca, certificates.certificate_file(course, "grader"),
            certificates.key_file(course, "grader")), timeout=20) as allowed:
        assert allowed.scheduler_info()["address"] == gate.address
        assert len(_clients(grader)) == len(before) + 1
    log = _scheduler_log(gate)
    assert "refused 'register-client'" in log and "(certificate role: worker)" in log


# ----------------------------------------------------------------------------- workers
def test_a_worker_without_a_worker_certificate_of_the_course_never_joins(
        gate: cluster.LocalCluster, grader: Any, other_course: Path, tmp_path: Path) -> None:
    course = gate.certificates
    ca = certificates.certificate_file(course, "ca")
    rogues = {
        "another course's worker certificate": _tls(
            ca, certificates.certificate_file(other_course, "worker"),
            certificates.key_file(other_course, "worker")),
        "a look-alike of the course's worker certificate": _tls(
            ca, *_lookalike(course, "worker", tmp_path / "lookalike")),
        "the course's grader certificate": _tls(
            ca, certificates.certificate_file(course, "grader"),
            certificates.key_file(course, "grader")),
        "no certificate": ["--tls-ca-file", str(ca)],
    }
    started = {what: (f"worker-{len(gate.workers)}", gate.add_worker(tls=options))
               for what, options in rogues.items()}
    control = f"worker-{len(gate.workers)}"
    gate.add_worker()  # the course's own worker certificate

    def joined() -> set[str]:
        return {str(w["name"]) for w in grader.scheduler_info()["workers"].values()}

    _wait_for(lambda: control in joined(), "the course's own worker to join")
    for what, (name, process) in started.items():
        _wait_for(lambda p=process: p.poll() is not None, f"the worker with {what} to give up")
        assert process.returncode != 0, (what, gate.log_of(name))
    registered = _registered(_scheduler_log(gate))
    assert control in registered and joined() == {control}
    for what, (name, _) in started.items():
        assert name not in registered, f"the worker with {what} joined"
    log = _scheduler_log(gate)
    assert "refused 'register_nanny'" in log and "(certificate role: grader)" in log


# ----------------------------------------------------------------------------- results are data
@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A cluster whose only worker is the rogue (``rogue_worker.py``), with the course's own
    worker certificate: the layer under test is what the grader believes, alone."""
    logs = tmp_path_factory.mktemp("rogue-logs")
    attacks = logs / "attacks.txt"
    with cluster.local(workers=0, log=logs, env={rogue_worker.MARKER: ""}) as running:
        running.add_worker(preload=str(ROGUE), env={rogue_worker.LOG: str(attacks)})
        with running.connect() as client:
            client.wait_for_workers(1, timeout=PATIENCE)
            yield {"cluster": running, "client": client, "attacks": attacks}


def test_the_rogue_payload_runs_code_when_unpickled(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The control of the attack: unpickled here, the payload writes the marker."""
    marker = tmp_path / "marker"
    monkeypatch.setenv(rogue_worker.MARKER, str(marker))
    pickle.loads(rogue_worker.payload())  # noqa: S301 - the point of the test
    assert marker.read_text() == f"unpickled in process {os.getpid()}\n"


PLAIN_CLIENT = textwrap.dedent("""
    import sys
    from distributed import Client, Security
    from course.grading.cluster import grade_task
    folder, address = sys.argv[1], sys.argv[2]
    security = Security(require_encryption=True, tls_ca_file=f"{folder}/ca.pem",
                        tls_client_cert=f"{folder}/grader.pem",
                        tls_client_key=f"{folder}/grader-key.pem")
    with Client(address, security=security, timeout=60) as client:
        for name in ("victim-result-plain.ipynb", "victim-error-plain.ipynb"):
            try:
                client.submit(grade_task, name, b"", "", {}, None, [], None,
                              pure=False).result()
            except BaseException as error:
                print(type(error).__name__)
""")


def test_a_plain_dask_client_runs_the_rogue_workers_code(rogue: dict[str, Any],
                                                         tmp_path: Path) -> None:
    """What the grader faced before: a plain ``distributed.Client`` (as the grader used to
    make), with the course's grader certificate, unpickles the rogue's result."""
    marker = tmp_path / "marker"
    done = subprocess.run([sys.executable, "-c", PLAIN_CLIENT, str(rogue["cluster"]
                                                                   .certificates),
                           rogue["cluster"].address], capture_output=True, text=True,
                          timeout=PATIENCE, env={**os.environ, rogue_worker.MARKER: str(marker)},
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert marker.is_file(), (done.stdout, done.stderr[-3000:])
    assert "unpickled in process" in marker.read_text()


def test_a_worker_answering_with_objects_runs_nothing_in_the_grader(
        rogue: dict[str, Any], scale_notebooks: dict[str, Path], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "marker"
    monkeypatch.setenv(rogue_worker.MARKER, str(marker))  # this process is the grader
    victims = [shutil.copy(scale_notebooks[kind], tmp_path / f"victim-{attack}.ipynb")
               for attack, kind in (("result", "reference"), ("error", "reference"),
                                    ("forged", "release"))]  # forged: 0 points, total raised
    classmates = {"reference": scale_notebooks["reference"],
                  "release": scale_notebooks["release"]}
    files = [classmates["reference"], Path(victims[0]), classmates["release"],
             Path(victims[1]), Path(victims[2]), classmates["reference"]]
    reports = batch.grade(files, runner=cluster.DaskCluster(rogue["client"]),
                          seeds=[fixed_seeds()] * len(files), limits=LIMITS)
    # the rogue's events reached the scheduler (which sends them to clients that take them)
    assert rogue["client"].get_events("warn") and rogue["client"].get_events("print")
    shown = capfd.readouterr()

    assert not marker.exists(), marker.read_text()
    attacks = rogue["attacks"].read_text()
    for attack in ("result victim-result.ipynb", "error victim-error.ipynb",
                   "forged victim-forged.ipynb"):
        assert attack in attacks, attacks
    assert rogue_worker.PRINTED not in shown.out + shown.err

    by_file = dict(zip([str(f) for f in files], reports, strict=False))
    reasons = {"victim-result": "the worker's answer was refused",
               "victim-error": "its task failed on the cluster",
               "victim-forged": "its total is not the sum of its cells' points"}
    for victim in victims:
        report = by_file[str(victim)]
        assert report["total"] == 0 and report["gradable"] is False, report
        assert report.get("grader_failed") is True, report
        assert report["ended"].startswith(GRADER_FAILED), report["ended"]
        assert reasons[Path(victim).stem] in report["ended"], report["ended"]
    graded = cells.source_graded_cells()
    full = sum(cell.points for cell in graded)
    for index in (0, 5):
        report = reports[index]
        assert report["gradable"] and report["total"] == full == report["max_total"], report
        assert report["grader"]["worker"] in rogue["client"].scheduler_info()["workers"]
    blank = reports[2]
    assert blank["gradable"] and blank["total"] == 0 and not blank.get("grader_failed")


# ----------------------------------------------------------------------------- the answer's checks
def _report(graded: list[Any]) -> dict[str, Any]:
    report = submission.refused("x.ipynb", graded, time.perf_counter(), "blank")
    report["cells"][0].update(points=graded[0].points, passed=True)
    report["total"] = graded[0].points
    return report


def test_a_report_no_judging_gives_is_named() -> None:
    graded = cells.source_graded_cells()
    assert cluster.report_problem(_report(graded), graded) is None
    first = graded[0]
    breaks = {
        "half the points": lambda r: r["cells"][0].update(points=first.points / 2),
        "points without passing": lambda r: r["cells"][0].update(passed=False),
        "a cell worth more": lambda r: r["cells"][0].update(max_points=first.points + 1),
        "another cell": lambda r: r["cells"][0].update(grade_id="elsewhere"),
        "a cell missing": lambda r: r["cells"].pop(),
        "a total raised": lambda r: r.update(total=r["max_total"]),
        "text for a total": lambda r: r.update(total="100"),
        "true for a number": lambda r: r.update(seconds=True),
        "no gradable": lambda r: r.pop("gradable"),
        "a raised cell of another shape": lambda r: r.update(cells_that_raised=[{"cell": 1}]),
        "layers of another shape": lambda r: r.update(isolation="all of them"),
        "not an object": lambda r: r.clear(),
    }
    for what, change in breaks.items():
        report = _report(graded)
        change(report)
        assert cluster.report_problem(report, graded) is not None, what
    assert cluster.report_problem([], graded) == "it is not an object"


def test_an_answer_that_is_not_a_report_is_the_graders_failure() -> None:
    graded = cells.source_graded_cells()
    path = Path("alice.ipynb")
    answers = {
        "bytes": b"{}",
        "not JSON": "{'report': 1}",
        "nested too deep": "[" * 100 + "]" * 100,
        "no report": '{"report": null}',
        "a failure, said with escapes": '{"failed": "\\u001b[2J worker lost"}',
    }
    for what, answer in answers.items():
        report = cluster.from_worker(answer, path, graded, time.perf_counter())
        assert report["grader_failed"] is True and report["total"] == 0, what
        assert report["ended"].startswith(GRADER_FAILED) and "\x1b" not in report["ended"], what
    honest = _report(graded)
    honest["ended"] = "\x1b[2Jdone"
    import json

    believed = cluster.from_worker(json.dumps({"report": honest}), path, graded, 0.0)
    assert believed["total"] == graded[0].points and believed["file"] == str(path)
    assert "\x1b" not in believed["ended"]

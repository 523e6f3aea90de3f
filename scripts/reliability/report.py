"""The reliability report of sagebridge (run by scripts/reliability/report.sh).

Sections, each printing rows of one table at the end:
  faults   ingestion and the gateway behind the testkit's fault proxy, one fault at a time
  crash    kill -9 of `sagebridge ingest` at seeded random points, then integrity and a re-run
  hostile  slow-loris clients and 10,000 idle connections against `serve` (FDs, RSS)
  secrets  sentinel secrets through success and error paths at log level trace: zero hits
  soak     a bounded mixed load on the gateway: RSS, FDs and p99 latency per minute

Everything listens on 127.0.0.1; every loop is bounded in count and time; only processes this
script started are stopped, by PID.
"""

import http.client
import json
import os
import random
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = os.environ["SAGEBRIDGE_BIN"]
VENV = os.environ["SAGEBRIDGE_VENV"]
SECTIONS = sys.argv[1:] or ["faults", "crash", "hostile", "secrets", "soak"]
CRASH_TRIALS = int(os.environ.get("CRASH_TRIALS", "50"))
SOAK_SECONDS = int(os.environ.get("SOAK_SECONDS", "600"))
IDLE_CONNECTIONS = int(os.environ.get("IDLE_CONNECTIONS", "10000"))
WORK = tempfile.mkdtemp(prefix="sagebridge-reliability-")
ROWS = []  # (section, case, result, detail)
STARTED = []  # Popen objects this script started


def row(section, case, ok, detail):
    ROWS.append((section, case, "ok" if ok else "FAIL", detail))
    print(f"  [{section}] {case}: {'ok' if ok else 'FAIL'} {detail}", file=sys.stderr, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(cmd, ready=None, env=None, stdout_path=None, stderr_path=None):
    """Starts a process; with `ready`, waits (up to 30 s) for a stdout line matching it."""
    out = open(stdout_path, "w+") if stdout_path else subprocess.PIPE
    err = open(stderr_path, "w") if stderr_path else subprocess.DEVNULL
    p = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, text=True)
    STARTED.append(p)
    if ready is None:
        return p, None
    deadline = time.time() + 30
    while time.time() < deadline:
        if stdout_path:
            with open(stdout_path) as f:
                m = re.search(ready, f.read())
        else:
            line = p.stdout.readline()
            m = re.search(ready, line or "")
        if m:
            return p, m
        if p.poll() is not None:
            break
        if stdout_path:
            time.sleep(0.05)
    raise RuntimeError(f"{cmd[0]} did not start")


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start_moto():
    port = free_port()
    env = dict(os.environ, MOTO_RECORDER_FILEPATH=os.path.join(WORK, "moto-rec"))
    p, _ = start([os.path.join(VENV, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return p, url
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("moto did not start")


def start_proxy(upstream, seed=1):
    p, m = start([os.path.join(BIN, "sagebridge-fault-proxy"), "--upstream", upstream, "--seed", str(seed)],
                 ready=r"fault proxy listening on (http://\S+)")
    return p, m.group(1)


def set_faults(proxy_url, rules):
    req = urllib.request.Request(proxy_url + "/__fault-proxy/rules", data="\n".join(rules).encode(), method="POST")
    urllib.request.urlopen(req, timeout=5).read()


def proxy_stats(proxy_url):
    return json.loads(urllib.request.urlopen(proxy_url + "/__fault-proxy/stats", timeout=5).read())


def moto_models(moto_url):
    import boto3
    c = boto3.client("sagemaker", endpoint_url=moto_url, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing")
    names = set()
    for page in c.get_paginator("list_models").paginate():
        names.update(m["ModelName"] for m in page["Models"])
    return names


def catalog_models(path, service="rel"):
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT name FROM models WHERE service = ? AND deleted = 0", (service,))}
    finally:
        con.close()


def workflow(path, endpoint, catalog, extra="", secret="testing", level="WARN"):
    with open(path, "w") as f:
        f.write(f"""source:
  type: sagemaker
  serviceName: rel
  serviceConnection:
    config:
      type: SageMaker
      awsConfig:
        awsAccessKeyId: testing
        awsSecretAccessKey: {secret}
        awsRegion: us-east-1
        endPointURL: {endpoint}
  sourceConfig:
    config:
      type: MlModelMetadata
      markDeletedMlModels: true
      attemptTimeoutSeconds: 2
      operationTimeoutSeconds: 20
{extra}sink:
  type: catalog
  config:
    path: {catalog}
workflowConfig:
  loggerLevel: {level}
""")
    return path


def ingest(wf, timeout=120, env=None):
    started = time.time()
    p = subprocess.run([os.path.join(BIN, "sagebridge"), "ingest", "-c", wf, "--json"], capture_output=True,
                       text=True, timeout=timeout, env=env)
    took = time.time() - started
    try:
        report = json.loads(p.stdout)
    except ValueError:
        report = None
    return p.returncode, report, took, p


# ---------------------------------------------------------------------------------------------
# faults


INGEST_FAULTS = [
    ("no fault", []),
    ("30 ms latency on every call", ["*=latency:30ms"]),
    ("30% throttling", ["*=throttle:30%"]),
    ("20% HTTP 500", ["*=status:500:20%"]),
    ("20% HTTP 503", ["*=status:503:20%"]),
    ("10% connection resets", ["*=reset:10%"]),
    ("10% truncated bodies", ["*=truncate:10%"]),
    ("5% stalled responses (60 s)", ["*=stall:60s:5%"]),
    ("ListFeatureGroups always 500", ["ListFeatureGroups=status:500:100%"]),
    ("DescribeModel always 503", ["DescribeModel=status:503:100%"]),
    ("ListModels reset 50%", ["ListModels=reset:50%"]),
]


def section_faults():
    moto, moto_url = start_moto()
    subprocess.run([os.path.join(BIN, "sagebridge-seed"), "--endpoint", moto_url, "--preset", "demo"], check=True,
                   capture_output=True, timeout=300)
    truth = moto_models(moto_url)
    proxy, proxy_url = start_proxy(moto_url, seed=11)
    try:
        for case, rules in INGEST_FAULTS:
            set_faults(proxy_url, rules)
            catalog = os.path.join(WORK, f"faults-{len(ROWS)}.db")
            wf = workflow(os.path.join(WORK, "faults.yaml"), proxy_url, catalog)
            code, report, took, p = ingest(wf)
            stats = proxy_stats(proxy_url)
            have = catalog_models(catalog) if os.path.exists(catalog) else set()
            failures = [f.get("model") or f.get("name") or str(f) for f in (report or {}).get("failures", [])]
            if code == 0:
                ok = have == truth
                verdict = f"exit 0, catalog = SageMaker ({len(have)} models)" if ok else \
                    f"exit 0 but catalog has {len(have)} of {len(truth)}"
            elif code == 3:
                named = report is not None and (failures or report.get("warnings") or not report.get("listingComplete", True))
                ok = bool(named) and have <= truth
                verdict = f"exit 3, {len(failures)} failures named, {len(have)}/{len(truth)} written"
            else:
                ok = False
                verdict = f"exit {code}: {p.stderr.strip().splitlines()[-1:]}"
            row("faults: ingest", case, ok,
                f"{verdict}; run {took:.1f} s, slowest answer {stats['longest_ms'] / 1000:.2f} s, "
                f"injected {sum(stats['faults'].values())}")
    finally:
        stop(proxy)
        stop(moto)
    gateway_faults()


GATEWAY_FAULTS = [
    # (case, rules, what the client must see: "ok" or "error")
    ("no fault", [], "ok"),
    ("30 ms latency", ["*=latency:30ms"], "ok"),
    ("slow event stream (100 ms per chunk)", ["*=slow:100ms"], "ok"),
    ("throttled", ["*=throttle:100%"], "error"),
    ("HTTP 500", ["*=status:500:100%"], "error"),
    ("HTTP 503", ["*=status:503:100%"], "error"),
    ("connection reset", ["*=reset:100%"], "error"),
    ("truncated body", ["*=truncate:100%"], "error"),
    ("stalled response (30 s)", ["*=stall:30s:100%"], "error"),
    ("stream cut mid-event", ["*=cut:150"], "error"),
    ("30% mixed faults", ["*=throttle:10%,status:503:10%,reset:10%"], "either"),
]


def start_serve(config_text, name="serve", env=None, catalog=None):
    cfg = os.path.join(WORK, f"{name}.yaml")
    with open(cfg, "w") as f:
        f.write(config_text)
    catalog = catalog or os.path.join(WORK, f"{name}.db")
    out = os.path.join(WORK, f"{name}.out")
    err = os.path.join(WORK, f"{name}.err")
    p, m = start([os.path.join(BIN, "sagebridge"), "serve", "-c", cfg, "--listen", "127.0.0.1:0", "--catalog", catalog],
                 ready=r"listening on http://(\S+)", env=env, stdout_path=out, stderr_path=err)
    host, port = m.group(1).rsplit(":", 1)
    return p, host, int(port), err


def gateway_config(runtime_url, key="rel-api-key-0123", extra_server="", secret="testing"):
    return f"""server:
  apiKeys: ["{key}"]
  adminTokens: ["rel-admin-token-0123456789"]
  timeoutSeconds: 5
{extra_server}awsConfig:
  awsRegion: us-east-1
  awsAccessKeyId: testing
  awsSecretAccessKey: {secret}
  endPointURL: {runtime_url}
models:
  - {{name: chat, kind: chat, endpointName: tgi, format: tgi}}
  - {{name: embed, kind: embedding, endpointName: embed, format: tei}}
"""


def chat(port, stream, key="rel-api-key-0123", timeout=60, model="chat"):
    """Returns (status, content, error, done, seconds)."""
    body = json.dumps({"model": model, "stream": stream, "max_tokens": 16,
                       "messages": [{"role": "user", "content": "hello"}]})
    started = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", "/v1/chat/completions", body,
                  {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = c.getresponse()
        if not stream or r.status != 200:
            data = r.read()
            try:
                doc = json.loads(data)
            except ValueError:
                return r.status, None, f"unparsable body {data[:80]!r}", False, time.time() - started
            if r.status == 200:
                return 200, doc["choices"][0]["message"]["content"], None, True, time.time() - started
            return r.status, None, (doc.get("error") or {}).get("type") or (doc.get("error") or {}).get("code"), False, time.time() - started
        content, error, done = "", None, False
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                continue
            doc = json.loads(data)
            if "error" in doc:
                error = doc["error"].get("type") or doc["error"].get("code") or "error"
                continue
            for ch in doc.get("choices", []):
                content += (ch.get("delta") or {}).get("content") or ""
        return 200, content, error, done, time.time() - started
    except (OSError, http.client.HTTPException) as e:
        return 0, None, f"client error {e!r}", False, time.time() - started
    finally:
        c.close()


def gateway_faults():
    fake, m = start([os.path.join(BIN, "sagebridge-fake-runtime")], ready=r"fake runtime listening on (http://\S+)")
    proxy, proxy_url = start_proxy(m.group(1), seed=12)
    serve, _, port, _ = start_serve(gateway_config(proxy_url), name="gw-faults")
    try:
        expected = {}
        for case, rules, want in GATEWAY_FAULTS:
            set_faults(proxy_url, rules)
            outcomes = []
            for stream in (False, True):
                for _ in range(3 if want == "either" else 1):
                    status, content, error, done, took = chat(port, stream)
                    key = "stream" if stream else "buffered"
                    if case == "no fault":
                        expected[key] = content
                    full = status == 200 and error is None and done and content == expected.get(key)
                    classified = (status in (429, 500, 502, 503, 504) and error) or (status == 200 and error and not done)
                    silent = status == 200 and not full and not classified
                    ok = (want == "ok" and full) or (want == "error" and classified) or \
                         (want == "either" and (full or classified))
                    outcomes.append((ok and not silent, f"{key} {status} {error or 'complete'} {took:.1f}s"))
            row("faults: gateway", case, all(o for o, _ in outcomes), "; ".join(d for _, d in outcomes))
    finally:
        stop(serve)
        stop(proxy)
        stop(fake)


# ---------------------------------------------------------------------------------------------
# crash


def integrity(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def section_crash():
    moto, moto_url = start_moto()
    subprocess.run([os.path.join(BIN, "sagebridge-seed"), "--endpoint", moto_url, "--preset", "bulk", "--models", "200"],
                   check=True, capture_output=True, timeout=600)
    # Latency stretches a run so that a kill lands inside it.
    proxy, proxy_url = start_proxy(moto_url, seed=13)
    set_faults(proxy_url, ["*=latency:10ms"])
    rng = random.Random(20261203)
    try:
        ref = os.path.join(WORK, "crash-ref.db")
        code, _, clean_took, _ = ingest(workflow(os.path.join(WORK, "crash-ref.yaml"), proxy_url, ref))
        truth = catalog_models(ref)
        bad, kills_in_run, worst = [], 0, 0.0
        for trial in range(CRASH_TRIALS):
            catalog = os.path.join(WORK, f"crash-{trial}.db")
            wf = workflow(os.path.join(WORK, "crash.yaml"), proxy_url, catalog)
            # Some trials start from a previous state: a re-run killed mid-way too.
            if trial % 3 == 2:
                ingest(wf)
            p = subprocess.Popen([os.path.join(BIN, "sagebridge"), "ingest", "-c", wf], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.02, clean_took))
            if p.poll() is None:
                kills_in_run += 1
            p.send_signal(signal.SIGKILL)
            p.wait()
            if os.path.exists(catalog):
                check = integrity(catalog)
                if check != "ok":
                    bad.append(f"trial {trial}: integrity {check}")
                    continue
            code, report, took, _ = ingest(wf)
            worst = max(worst, took)
            have = catalog_models(catalog)
            if code != 0 or have != truth or integrity(catalog) != "ok":
                bad.append(f"trial {trial}: re-run exit {code}, {len(have)}/{len(truth)} models")
        row("crash", f"kill -9 of ingest, {CRASH_TRIALS} seeded trials", not bad and code == 0,
            f"{kills_in_run} kills landed mid-run; integrity ok and re-run = clean run ({len(truth)} models) "
            f"in {CRASH_TRIALS - len(bad)}/{CRASH_TRIALS}; clean run {clean_took:.1f} s, slowest re-run {worst:.1f} s"
            + (f"; {bad[:3]}" if bad else ""))
        crash_serve(proxy_url, truth, rng)
    finally:
        stop(proxy)
        stop(moto)


def admin(port, method, path, body=None, token="rel-admin-token-0123456789"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        c.request(method, path, json.dumps(body) if body is not None else None, headers)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def crash_serve(proxy_url, truth, rng, trials=10):
    """kill -9 of `serve` during a pipeline run it started, then a restart and another run."""
    catalog = os.path.join(WORK, "crash-serve.db")
    env = dict(os.environ, SAGEBRIDGE_SECRET_KEY="0" * 64)
    cfg = gateway_config("http://127.0.0.1:9")
    bad = []
    service_id = pipeline_id = None
    for trial in range(trials):
        serve, _, port, _ = start_serve(cfg, name="crash-serve", env=env, catalog=catalog)
        try:
            if service_id is None:
                status, svc = admin(port, "POST", "/api/v1/services/mlmodelServices", {
                    "name": "rel", "serviceType": "SageMaker",
                    "connection": {"config": {"type": "SageMaker", "awsConfig": {
                        "awsAccessKeyId": "testing", "awsSecretAccessKey": "testing",
                        "awsRegion": "us-east-1", "endPointURL": proxy_url}}}})
                assert status in (200, 201), (status, svc)
                service_id = svc["id"]
                status, pipe = admin(port, "POST", "/api/v1/services/ingestionPipelines", {
                    "name": "rel-pipeline", "service": {"id": service_id, "type": "mlmodelService"},
                    "sourceConfig": {"config": {"type": "MlModelMetadata", "markDeletedMlModels": True}}})
                assert status in (200, 201), (status, pipe)
                pipeline_id = pipe["id"]
            status, _ = admin(port, "POST", f"/api/v1/services/ingestionPipelines/trigger/{pipeline_id}")
            if status not in (200, 201, 202):
                bad.append(f"trial {trial}: trigger answered {status}")
            time.sleep(rng.uniform(0.05, 1.5))
        finally:
            serve.send_signal(signal.SIGKILL)
            serve.wait()
        check = integrity(catalog)
        if check != "ok":
            bad.append(f"trial {trial}: integrity {check}")
    # A last start: the run left behind is marked interrupted, and a new run completes.
    serve, _, port, _ = start_serve(cfg, name="crash-serve", env=env, catalog=catalog)
    try:
        status, run = admin(port, "POST", f"/api/v1/services/ingestionPipelines/trigger/{pipeline_id}")
        run_id = (run or {}).get("id")
        final = None
        for _ in range(600):
            status, latest = admin(port, "GET", f"/api/v1/services/ingestionPipelines/{pipeline_id}/runs/{run_id}")
            if status == 200 and latest.get("status") not in ("queued", "running"):
                final = latest
                break
            time.sleep(0.1)
        status, runs = admin(port, "GET", f"/api/v1/services/ingestionPipelines/{pipeline_id}/runs?limit=100")
        states = [r.get("status") for r in (runs or {}).get("data", [])]
        interrupted = [st for st in states if st in ("failed", "interrupted")]
        left_running = [st for st in states if st in ("queued", "running")]
    finally:
        stop(serve)
    have = catalog_models(catalog, service="rel")
    ok = not bad and final is not None and final.get("status") == "success" and have == truth and not left_running
    row("crash", f"kill -9 of serve during a pipeline run, {trials} trials", ok,
        f"integrity ok in {trials - len([b for b in bad if 'integrity' in b])}/{trials}; after restart a new run ended "
        f"{(final or {}).get('status')} with {len(have)}/{len(truth)} models; {len(interrupted)} killed runs marked "
        f"interrupted, {len(left_running)} left running" + (f"; {bad[:3]}" if bad else ""))


# ---------------------------------------------------------------------------------------------
# hostile


def proc_status(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    return fds, rss


def section_hostile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, IDLE_CONNECTIONS + 1024)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    fake, m = start([os.path.join(BIN, "sagebridge-fake-runtime")], ready=r"fake runtime listening on (http://\S+)")
    extra = "  headerReadTimeoutSeconds: 2\n  idleTimeoutSeconds: 5\n  maxConnections: 4096\n"
    serve, _, port, _ = start_serve(gateway_config(m.group(1), extra_server=extra), name="hostile")
    try:
        fds0, rss0 = proc_status(serve.pid)
        # Slow loris: 200 clients send a request head one byte at a time, never finishing.
        lorises = []
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: ")
            lorises.append(s)
        cut, started = 0, time.time()
        for s in lorises:
            s.settimeout(max(0.1, 10 - (time.time() - started)))
            try:
                # Bounded: the server closes after headerReadTimeoutSeconds (2 s).
                for _ in range(20):
                    s.sendall(b"a")
                    if s.recv(1024) == b"":
                        cut += 1
                        break
            except OSError:
                cut += 1
            finally:
                s.close()
        status, content, error, done, _ = chat(port, False)
        row("hostile", "200 slow-loris clients", cut == 200 and status == 200,
            f"{cut}/200 cut off within {time.time() - started:.1f} s; a normal request meanwhile: {status}")

        # Idle connections: many more than maxConnections.
        conns, refused = [], 0
        started = time.time()
        for i in range(IDLE_CONNECTIONS):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect_ex(("127.0.0.1", port))
                conns.append(s)
            except OSError:
                refused += 1
                s.close()
            if time.time() - started > 60:
                break
        time.sleep(2)
        fds1, rss1 = proc_status(serve.pid)
        # They are closed by the idle timeout (5 s); then a request goes through.
        time.sleep(7)
        status, _, _, _, took = chat(port, False, timeout=30)
        fds2, rss2 = proc_status(serve.pid)
        for s in conns:
            s.close()
        row("hostile", f"{len(conns)} idle connections", status == 200 and fds1 < 4096 + 200,
            f"serve FDs {fds0} -> {fds1} (cap maxConnections 4096) -> {fds2} after idle timeout; "
            f"RSS {rss0} -> {rss1} -> {rss2} MiB; then a request: {status} in {took:.2f} s")
    finally:
        stop(serve)
        stop(fake)
    fuzz()


def fuzz():
    """The property tests of the parsers with many cases (they run with few in the test suite)."""
    cases = os.environ.get("FUZZ_CASES", "20000")
    env = dict(os.environ, PROPTEST_CASES=cases)
    started = time.time()
    p = subprocess.run(["cargo", "nextest", "run", "--workspace", "--no-fail-fast", "-E", "test(/^fuzz_/)"],
                       capture_output=True, text=True, env=env, timeout=3600)
    summary = [l.strip() for l in p.stderr.splitlines() if "Summary" in l or "tests run" in l]
    row("hostile", f"property tests (fuzz_*), {cases} cases each", p.returncode == 0,
        f"{summary[-1] if summary else p.stderr[-200:]} in {time.time() - started:.0f} s")


# ---------------------------------------------------------------------------------------------
# secrets


SENTINELS = {
    "aws secret key": "SENTINELsecretKEYwJalrXUtnFEMIK7MDENGbPxRfiCY",
    "session token": "SENTINELsessionTOKENFwoGZXIvYXdzEBYaDH",
    "api key": "sk-SENTINELapiKEY0123456789abcdef",
    "admin token": "SENTINELadminTOKEN0123456789abcdef",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJTRU5USU5FTGp3dCJ9.SENTINELjwtSIGNATURE0123456789",
    "container HF_TOKEN": "hf_SENTINELhfTOKEN0123456789abcdefgh",
    "container DATABASE_URL password": "SENTINELdbPASSWORD99",
}


def section_secrets():
    moto, moto_url = start_moto()
    import boto3
    sm = boto3.client("sagemaker", endpoint_url=moto_url, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    sm.create_model(ModelName="leaky", ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "123.dkr.ecr.us-east-1.amazonaws.com/x:1", "Environment": {
                        "HF_TOKEN": SENTINELS["container HF_TOKEN"],
                        "DATABASE_URL": f"postgres://u:{SENTINELS['container DATABASE_URL password']}@db:5432/x",
                        "SM_MODEL_DIR": "/opt/ml/model"}})
    captured = []  # (where, text)
    env = dict(os.environ, SAGEBRIDGE_LOG="trace", AWS_SESSION_TOKEN=SENTINELS["session token"])
    catalog = os.path.join(WORK, "secrets.db")
    secret = SENTINELS["aws secret key"]
    extra = f"      # no extra\n"
    cases = [
        ("ingest ok", workflow(os.path.join(WORK, "s1.yaml"), moto_url, catalog, secret=secret, level="DEBUG")),
        ("ingest, endpoint refused", workflow(os.path.join(WORK, "s2.yaml"), "http://127.0.0.1:9", catalog, secret=secret)),
    ]
    om = os.path.join(WORK, "s3.yaml")
    with open(om, "w") as f:
        f.write(open(cases[0][1]).read().replace(f"""sink:
  type: catalog
  config:
    path: {catalog}
workflowConfig:
  loggerLevel: DEBUG
""", f"""sink:
  type: metadata-rest
  config: {{}}
workflowConfig:
  loggerLevel: DEBUG
  openMetadataServerConfig:
    hostPort: http://127.0.0.1:9/api
    authProvider: openmetadata
    securityConfig:
      jwtToken: {SENTINELS['jwt']}
"""))
    cases.append(("ingest into an unreachable OpenMetadata (JWT)", om))
    for case, wf in cases:
        for cmd in (["ingest", "-c", wf], ["ingest", "-c", wf, "--json"], ["test-connection", "-c", wf]):
            p = subprocess.run([os.path.join(BIN, "sagebridge")] + cmd, capture_output=True, text=True, env=env,
                               timeout=120)
            captured.append((f"{case}: {' '.join(cmd[:1])} stdout", p.stdout))
            captured.append((f"{case}: {' '.join(cmd[:1])} stderr", p.stderr))
    for args in (["models", "list", "--catalog", catalog, "--json"], ["models", "show", "leaky", "--catalog", catalog, "--json"]):
        p = subprocess.run([os.path.join(BIN, "sagebridge")] + args, capture_output=True, text=True, env=env, timeout=60)
        captured.append((" ".join(args[:2]), p.stdout + p.stderr))
    shown = captured[-1][1]
    # serve: the gateway, the admin API and the UI, with wrong and right credentials.
    fake, m = start([os.path.join(BIN, "sagebridge-fake-runtime")], ready=r"fake runtime listening on (http://\S+)")
    cfg = gateway_config(m.group(1), key=SENTINELS["api key"], secret=secret).replace(
        "rel-admin-token-0123456789", SENTINELS["admin token"])
    serve_env = dict(env, SAGEBRIDGE_SECRET_KEY="1" * 64)
    serve, _, port, err = start_serve(cfg, name="secrets", env=serve_env, catalog=catalog)
    responses = []
    try:
        for key in (SENTINELS["api key"], "wrong-key-0123456789"):
            for stream in (False, True):
                responses.append(str(chat(port, stream, key=key)))
            responses.append(str(chat(port, False, key=key, model="missing-model")))
        for token in (SENTINELS["admin token"], "wrong-token-0123456789"):
            for path in ("/api/v1/mlmodels?limit=100", "/api/v1/mlmodels/name/rel.leaky", "/api/v1/services/mlmodelServices",
                         "/api/v1/gateway/models", "/api/v1/apiKeys"):
                responses.append(str(admin(port, "GET", path, token=token)))
            status, svc = admin(port, "POST", "/api/v1/services/mlmodelServices", {
                "name": "secret-svc", "serviceType": "SageMaker",
                "connection": {"config": {"type": "SageMaker", "awsConfig": {
                    "awsAccessKeyId": "AKIASENTINEL", "awsSecretAccessKey": secret,
                    "awsSessionToken": SENTINELS["session token"], "awsRegion": "us-east-1",
                    "endPointURL": "http://127.0.0.1:9"}}}}, token=token)
            responses.append(str((status, svc)))
            if svc and svc.get("id"):
                responses.append(str(admin(port, "POST", "/api/v1/services/testConnection",
                                           {"serviceId": svc["id"]}, token=token)))
        for path in ("/", "/ui/app.js", "/metrics", "/healthz"):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", path, headers={"Authorization": f"Bearer {SENTINELS['admin token']}"})
            r = c.getresponse()
            body = r.read().decode(errors="replace")
            # The admin token is the caller's own; only a page that echoes it would matter.
            responses.append(body)
            c.close()
    finally:
        stop(serve)
        stop(fake)
        stop(moto)
    captured.append(("serve HTTP responses", "\n".join(responses)))
    captured.append(("serve log (trace)", open(err).read()))
    for suffix in ("", "-wal"):
        if os.path.exists(catalog + suffix):
            captured.append((f"catalog file{suffix}", open(catalog + suffix, "rb").read().decode("latin-1")))
    hits = []
    for where, text in captured:
        for name, value in SENTINELS.items():
            if value in text:
                hits.append(f"{name} in {where}")
    volume = sum(len(t) for _, t in captured)
    ok = not hits and "leaky" in shown
    row("secrets", "sentinels through success and error paths, log level trace", ok,
        f"{len(SENTINELS)} sentinels, {len(captured)} outputs ({volume // 1024} KiB) scanned: "
        + (f"{len(hits)} hits: {hits[:5]}" if hits else "zero hits"))


# ---------------------------------------------------------------------------------------------
# soak


def section_soak():
    fake, m = start([os.path.join(BIN, "sagebridge-fake-runtime")], ready=r"fake runtime listening on (http://\S+)")
    serve, _, port, _ = start_serve(gateway_config(m.group(1)), name="soak")
    stop_at = time.time() + SOAK_SECONDS
    lat = {}  # minute -> [ms]
    errors = {"unexpected": 0}
    lock = threading.Lock()
    start_t = time.time()

    def worker(n):
        rng = random.Random(n)
        i = 0
        while time.time() < stop_at and i < 10_000_000:
            i += 1
            kind = rng.random()
            t0 = time.time()
            try:
                if kind < 0.4:
                    status, _, err, _, _ = chat(port, False)
                    good = status == 200
                elif kind < 0.7:
                    # A stream the client abandons after its first chunk half of the time.
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    c.request("POST", "/v1/chat/completions", json.dumps(
                        {"model": "chat", "stream": True, "messages": [{"role": "user", "content": "hi"}]}),
                        {"Authorization": "Bearer rel-api-key-0123", "Content-Type": "application/json"})
                    r = c.getresponse()
                    good = r.status == 200
                    if rng.random() < 0.5:
                        r.read(64)
                    else:
                        r.read()
                    c.close()
                elif kind < 0.9:
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    c.request("POST", "/v1/embeddings", json.dumps({"model": "embed", "input": ["a", "b", "c"]}),
                              {"Authorization": "Bearer rel-api-key-0123", "Content-Type": "application/json"})
                    r = c.getresponse()
                    r.read()
                    good = r.status == 200
                    c.close()
                else:
                    status, _, err, _, _ = chat(port, False, model="no-such-model")
                    good = status == 404
            except (OSError, http.client.HTTPException):
                good = False
            ms = (time.time() - t0) * 1000
            with lock:
                lat.setdefault(int((t0 - start_t) // 60), []).append(ms)
                if not good:
                    errors["unexpected"] += 1

    time.sleep(1)
    fds0, rss0 = proc_status(serve.pid)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SOAK_SECONDS + 120)
    time.sleep(2)
    fds1, rss1 = proc_status(serve.pid)
    stop(serve)
    stop(fake)
    total = sum(len(v) for v in lat.values())
    per_minute = []
    for minute in sorted(lat):
        v = sorted(lat[minute])
        per_minute.append(f"m{minute + 1} p99 {v[int(len(v) * 0.99) - 1 if len(v) > 1 else 0]:.0f} ms")
    ok = errors["unexpected"] == 0 and fds1 <= fds0 + 8 and rss1 <= rss0 * 1.5 + 20
    row("soak", f"{SOAK_SECONDS} s mixed load (chat, streams with disconnects, embeddings, errors), 8 clients", ok,
        f"{total} requests, {errors['unexpected']} unexpected answers; FDs {fds0} -> {fds1}; RSS {rss0} -> {rss1} MiB; "
        + ", ".join(per_minute))


def main():
    try:
        for s in SECTIONS:
            print(f"== {s}", file=sys.stderr, flush=True)
            try:
                globals()[f"section_{s}"]()
            except Exception as e:  # a broken section is a failed row, the others still run
                row(s, "section", False, f"aborted: {e!r}")
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
                p.wait()
    width = max(len(f"{s} / {c}") for s, c, _, _ in ROWS) if ROWS else 10
    print(f"{'check':<{width}}  result  detail")
    for s, c, r, d in ROWS:
        print(f"{s + ' / ' + c:<{width}}  {r:<6}  {d}")
    failed = [r for r in ROWS if r[2] != "ok"]
    print(f"\n{len(ROWS) - len(failed)}/{len(ROWS)} checks ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

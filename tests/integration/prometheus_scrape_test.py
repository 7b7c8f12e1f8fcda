#!/usr/bin/python3
"""Live scrape check: starts provp-server (tiny CLIP fixture, LibTorch engine)
and a real Prometheus server, both on 127.0.0.1 only, with Prometheus
scraping the server's /metrics every second. Classifies a known number of
images over gRPC, then asks Prometheus' HTTP API until
sum(provp_classify_images_total) equals that number and up{job="provp"} is 1.
Every wait is bounded; both processes are stopped however the test ends.
Exits 77 (ctest SKIP_RETURN_CODE) when the prometheus binary is missing."""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from provp_testlib import png

SKIP = 77


def free_port():
    """A loopback port that was free a moment ago (the caller retries if it
    is taken before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_port(path, proc, what, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"provp-server exited ({proc.returncode}) before writing {what}")
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except FileNotFoundError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"no {what} within {timeout_s} s")


def http_get(url, timeout_s=5):
    with urllib.request.urlopen(url, timeout=timeout_s) as r:
        return r.status, r.read()


def stop(proc, name):
    """SIGTERM, then SIGKILL after 15 s; returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            print(f"{name} ignored SIGTERM; killing", file=sys.stderr)
            proc.kill()
            proc.wait(timeout=15)
    return proc.returncode


def start_prometheus(binary, tmp, metrics_port, logs):
    """Starts Prometheus on a free loopback port and waits until it is ready.
    Retries with another port when it exits (e.g. the port was taken)."""
    config = os.path.join(tmp, "prometheus.yml")
    with open(config, "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: provp
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:{metrics_port}']
""")
    for attempt in range(5):
        port = free_port()
        log = open(os.path.join(tmp, f"prometheus-{attempt}.log"), "w")
        logs.append(log.name)
        proc = subprocess.Popen(
            [binary, f"--config.file={config}",
             f"--storage.tsdb.path={tmp}/tsdb-{attempt}",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, _ = http_get(f"http://127.0.0.1:{port}/-/ready", timeout_s=2)
                if status == 200:
                    return proc, port
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.2)
        print(f"prometheus attempt {attempt} on port {port} did not become ready; retrying",
              file=sys.stderr)
        stop(proc, "prometheus")
    raise AssertionError("prometheus did not start after 5 attempts")


def query(prom_port, promql):
    """The instant-vector result of a PromQL query (list of samples)."""
    url = (f"http://127.0.0.1:{prom_port}/api/v1/query?" +
           urllib.parse.urlencode({"query": promql}))
    _, body = http_get(url)
    reply = json.loads(body)
    assert reply.get("status") == "success", reply
    return reply["data"]["result"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True)
    ap.add_argument("--stubs", required=True)
    ap.add_argument("--shared", required=True)
    ap.add_argument("--prometheus", default="/usr/bin/prometheus")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds to wait for Prometheus to report the count")
    args = ap.parse_args()
    if not os.access(args.prometheus, os.X_OK):
        print(f"SKIP: {args.prometheus} not found (apt-get install prometheus)")
        return SKIP
    model = f"{args.shared}/fixtures/tiny/openai.safetensors"
    vocab = f"{args.shared}/clip/bpe_simple_vocab_16e6.txt.gz"
    for path in (model, vocab):
        if not os.path.exists(path):
            raise AssertionError(f"fixture missing: {path}")
    sys.path.insert(0, args.stubs)
    import grpc
    from provp.v1 import classification_pb2, classification_pb2_grpc, common_pb2

    tmp = tempfile.mkdtemp(prefix="provp_prom_")
    logs = [os.path.join(tmp, "server.log")]
    server = prom = None
    ok = False
    try:
        port_file = os.path.join(tmp, "port")
        metrics_port_file = os.path.join(tmp, "metrics_port")
        with open(logs[0], "w") as log:
            server = subprocess.Popen(
                [args.server, "--listen=127.0.0.1:0", f"--port-file={port_file}",
                 "--metrics-port=0", "--metrics-bind=127.0.0.1",
                 f"--metrics-port-file={metrics_port_file}", f"--data-dir={tmp}/data",
                 f"--model={model}", f"--vocab={vocab}", "--torch-threads=1"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        grpc_port = read_port(port_file, server, "the gRPC port file", 120)
        metrics_port = read_port(metrics_port_file, server, "the metrics port file", 5)
        status, body = http_get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and b"provp_build_info" in body, body[:200]

        prom, prom_port = start_prometheus(args.prometheus, tmp, metrics_port, logs)

        # N images in two requests (all valid, so all are counted).
        channel = grpc.insecure_channel(f"127.0.0.1:{grpc_port}")
        cls = classification_pb2_grpc.ClassificationServiceStub(channel)
        classes = common_pb2.ClassList(names=["red", "green", "blue"])
        expected = 0
        for batch in ([(240, 10, 10), (10, 240, 10), (10, 10, 240)], [(200, 200, 20), (9, 9, 9)]):
            req = classification_pb2.ClassifyRequest(
                inline_classes=classes,
                images=[common_pb2.Image(encoded=png(*c, seed=i)) for i, c in enumerate(batch)])
            resp = cls.Classify(req, timeout=60)
            assert len(resp.results) == len(batch)
            for r in resp.results:
                assert not r.HasField("error"), r
            expected += len(batch)
        channel.close()

        deadline = time.monotonic() + args.timeout
        seen = None
        up = None
        while time.monotonic() < deadline:
            result = query(prom_port, "sum(provp_classify_images_total)")
            seen = float(result[0]["value"][1]) if result else None
            up_result = query(prom_port, 'up{job="provp"}')
            up = float(up_result[0]["value"][1]) if up_result else None
            if seen == expected and up == 1:
                break
            time.sleep(0.5)
        assert seen == expected, (
            f"Prometheus reports sum(provp_classify_images_total) = {seen}, expected "
            f"{expected} within {args.timeout} s")
        assert up == 1, f'up{{job="provp"}} = {up}'
        # The scraped series carries the documented label.
        labelled = query(prom_port, 'provp_classify_images_total{prompt_set="zero_shot"}')
        assert labelled and float(labelled[0]["value"][1]) == expected, labelled

        server_rc = stop(server, "provp-server")
        assert server_rc == 0, f"provp-server exited {server_rc} after SIGTERM"
        print(f"prometheus scrape: OK (sum(provp_classify_images_total) = {expected}, up = 1)")
        ok = True
        return 0
    finally:
        stop(prom, "prometheus")
        stop(server, "provp-server")
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            for path in logs:
                try:
                    with open(path, errors="replace") as f:
                        tail = f.read()[-3000:]
                    print(f"--- {path} (tail) ---\n{tail}", file=sys.stderr)
                except OSError:
                    pass
            print(f"logs kept in {tmp}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

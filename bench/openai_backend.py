"""Benchmark: the `openai` backend at concurrency 16 against concurrency 1 (target >= 8x).

A stub OpenAI-compatible server on 127.0.0.1, in its own process, answers every chat completion after
50 ms. Both settings send the same 64 requests (plus 16 warm-up requests); outputs must be identical
and in request order. Run: .venv/bin/python bench/openai_backend.py
"""

from __future__ import annotations

import json
import multiprocessing
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.backends import BackendSpec, make_backend  # noqa: E402

LATENCY_S = 0.05
REQUESTS = 64
WARM_UP = 16
CONCURRENCY = 16


class SlowChatServer(BaseHTTPRequestHandler):
    """Answer each chat completion with an echo of the request after LATENCY_S seconds."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(LATENCY_S)
        reply = {"choices": [{"message": {"role": "assistant", "content": f"echo '{body['messages'][-1]['content']}'"}}]}
        payload = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        """Keep the benchmark output clean."""


def serve(ports: multiprocessing.Queue) -> None:
    """Run the stub server on a free loopback port and report the port."""
    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowChatServer)
    ports.put(server.server_address[1])
    server.serve_forever()


def timed_run(base_url: str, concurrency: int, requests: list[str]) -> tuple[float, list[str]]:
    """Warm a fresh backend up, then return the seconds the requests took and the outputs."""
    backend = make_backend(BackendSpec(kind="openai", base_url=base_url, model="stub", api_key_env="UNSET_BENCH_KEY",
                                       concurrency=concurrency, max_retries=0))
    backend.generate([f"warm up {index}" for index in range(WARM_UP)])
    began = time.perf_counter()
    outputs = [generation.raw for generation in backend.generate(requests)]
    return time.perf_counter() - began, outputs


def main() -> None:
    """Time concurrency 1 and concurrency 16 on the same requests and print the speed-up."""
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    server = context.Process(target=serve, args=(ports,), daemon=True)
    server.start()
    try:
        base_url = f"http://127.0.0.1:{ports.get(timeout=30)}/v1"
        requests = [f"list the files in folder {index}" for index in range(REQUESTS)]
        serial_s, serial = timed_run(base_url, 1, requests)
        parallel_s, parallel = timed_run(base_url, CONCURRENCY, requests)
    finally:
        server.terminate()
        server.join(timeout=10)
    if serial != parallel or serial != [f"echo '{request}'" for request in requests]:
        raise SystemExit("outputs differ between concurrency settings or are out of order")
    print(f"stub server on 127.0.0.1, {LATENCY_S * 1000:.0f} ms per request, {REQUESTS} requests; outputs identical, in order")
    print(f"concurrency 1:  {serial_s:6.2f} s  {REQUESTS / serial_s:7.1f} requests/s")
    print(f"concurrency {CONCURRENCY}: {parallel_s:6.2f} s  {REQUESTS / parallel_s:7.1f} requests/s")
    print(f"speed-up (concurrency {CONCURRENCY} / 1): {serial_s / parallel_s:.2f}x (target >= 8x)")


if __name__ == "__main__":
    main()

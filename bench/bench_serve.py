"""The online service under load: a real `bentoml serve` against the in-process floor.

Setup (cached in `--dir`): a small real book of business (`--book` accounts, default 2,000,
`--months` months), its features and Feast store, one trained model promoted to champion and the
last day materialized into the SQLite online store: what `healthscore demo` leaves behind.

Measured in the same run:
- floor, in process, no HTTP: for one account, the Feast online lookup through the
  FeatureService (`serving.online.lookup`) + predict + explain (`Scorer.score`: the same
  `serving.batch.score_frame` the service runs), p50/p99 over `--requests` calls after a warm-up;
- single client: `POST /score` for one account by id over HTTP (keep-alive), p50/p99 over
  `--requests` requests after a warm-up, cycling through real account ids;
- throughput: 8 and 32 concurrent clients (threads, one httpx client each) for `--seconds`
  each: requests per second, p50/p99 and the error count (anything but 200 with one result);
- memory: the server's RSS (the `bentoml serve` process and its workers, summed) sampled every
  0.5 s over the whole run: start, end, max.

Goal (issue 6): single-client p99 within 3x of the floor's p99, zero errors, flat memory.
`--workers` / `--threads` are passed to the service (HEALTHSCORE_SERVING_WORKERS /
HEALTHSCORE_SERVING_THREADS). Timings on a shared 2-core machine are noisy: compare the ratios.

    .venv/bin/python bench/bench_serve.py --accounts 2000 --dir /tmp/hs-bench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--accounts", type=int, default=2_000, help="ignored: see --book")
    p.add_argument("--months", type=int, default=24)
    p.add_argument("--dir", required=True, help="work folder (the workspace is cached here)")
    p.add_argument("--book", type=int, default=2_000, help="accounts of the book served")
    p.add_argument("--requests", type=int, default=400, help="single-client requests measured")
    p.add_argument("--seconds", type=float, default=10.0, help="per concurrency level")
    p.add_argument("--clients", default="8,32", help="concurrency levels")
    p.add_argument("--workers", type=int, default=None, help="service workers (default: its own)")
    p.add_argument("--threads", type=int, default=None, help="threads per worker")
    p.add_argument("--setup-only", action="store_true", help="build the workspace and stop")
    return p.parse_args()


# -- setup (cached) --------------------------------------------------------------------------


def workspace(a: argparse.Namespace, root: Path):  # -> Settings
    """A trained, promoted and materialized workspace (built once per book size)."""
    from healthscore import pipeline
    from healthscore.settings import load_settings

    ws = root / f"serve-ws-{a.book}x{a.months}"
    config = root / "serve-healthscore.yaml"
    if not config.exists():
        config.write_text("training:\n  seed: 7\n")
    settings = load_settings(config, workspace=ws)
    done = ws / "bench-served.json"
    if done.exists():
        return settings
    pipeline.generate(settings, accounts=a.book, months=a.months, workers=2)
    pipeline.features_apply(settings)
    run, _, _ = pipeline.train(settings, run_name="bench-serve")
    pipeline.promote(settings, None, force=False, reason="")
    as_of = pipeline.features_materialize(settings)
    done.write_text(json.dumps({"version": run.version, "as_of": str(as_of)}))
    return settings


def account_ids(settings, store, scorer) -> list[str]:
    """The accounts the online store serves (found), in a fixed order."""
    import pandas as pd

    from serving.online import lookup

    candidates = pd.read_parquet(settings.feature_dir / "contract.parquet", columns=["account_id"])
    ids = sorted(candidates["account_id"].astype(str).unique())
    frame = lookup(store, scorer.service, ids)
    return [a for a, ok in zip(ids, frame["found"], strict=True) if ok]


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}


def floor(store, scorer, ids: list[str], n: int) -> dict:
    """In process, no HTTP: online lookup + predict + explain for one account, as `/score` does
    it (`serving.online.lookup` + `Scorer.score`, the model loaded as the service loads it)."""
    from serving.online import lookup

    def one(account: str) -> None:
        frame = lookup(store, scorer.service, [account])
        assert frame["found"].iloc[0], account
        scorer.score(frame)

    for a in ids[:50]:  # warm-up
        one(a)
    times = []
    for k in range(n):
        t0 = time.perf_counter()
        one(ids[k % len(ids)])
        times.append(time.perf_counter() - t0)
    return percentiles(times)


class Server:
    """`bentoml serve serving.service:HealthScore` in its own process group, and its RSS."""

    def __init__(self, config, root: Path) -> None:
        from serving.schemas import service_config_to_env

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **service_config_to_env(config), "BENTOML_HOME": str(root / "bh")}
        env["BENTOML_DO_NOT_TRACK"] = "True"
        self.log = root / "serve.log"
        bentoml = Path(sys.executable).parent / "bentoml"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(bentoml), "serve", "serving.service:HealthScore", "--port", str(self.port)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.rss: list[float] = []
        self._stop = threading.Event()

    def wait_ready(self, timeout: float = 300) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"bentoml serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.base + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"not ready in {timeout} s:\n{self.log.read_text()[-3000:]}")

    def rss_mb(self) -> float:
        import psutil

        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                total += p.memory_info().rss
        return total / 2**20

    def sample(self) -> None:
        """Sample the RSS every 0.5 s in a background thread until `stop`."""

        def loop() -> None:
            while not self._stop.wait(0.5):
                self.rss.append(self.rss_mb())

        self.rss.append(self.rss_mb())
        threading.Thread(target=loop, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ok(response) -> bool:
    if response.status_code != 200:
        return False
    body = response.json()
    return len(body["results"]) == 1 and not body["errors"]


def single_client(base: str, ids: list[str], n: int) -> tuple[dict, int]:
    import httpx

    errors, times = 0, []
    with httpx.Client(base_url=base, timeout=30) as client:
        for a in ids[:50]:  # warm-up (connections, the worker's first requests)
            client.post("/score", json={"account_ids": [a]})
        for k in range(n):
            t0 = time.perf_counter()
            r = client.post("/score", json={"account_ids": [ids[k % len(ids)]]})
            times.append(time.perf_counter() - t0)
            errors += not _ok(r)
    return percentiles(times), errors


def concurrent(base: str, ids: list[str], clients: int, seconds: float) -> dict:
    """`clients` threads, each with its own keep-alive connection, posting one account at a
    time for `seconds`."""
    import httpx

    stop = threading.Event()
    logs: list[list[tuple[float, bool]]] = [[] for _ in range(clients)]

    def client_loop(i: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            k = i * 7919
            while not stop.is_set():
                t0 = time.perf_counter()
                try:
                    ok = _ok(client.post("/score", json={"account_ids": [ids[k % len(ids)]]}))
                except httpx.HTTPError:
                    ok = False
                logs[i].append((time.perf_counter() - t0, ok))
                k += 1

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(120)
    wall = time.perf_counter() - t0
    done = [x for log in logs for x in log]
    return {
        "clients": clients,
        "requests": len(done),
        "rps": len(done) / wall,
        "errors": sum(not ok for _, ok in done),
        **percentiles([s for s, _ in done]),
    }


def main() -> None:
    a = parse()
    root = Path(a.dir)
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    settings = workspace(a, root)
    print(f"workspace ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if a.setup_only:
        return
    from healthscore import pipeline

    config = pipeline.service_config(settings)
    overrides = {k: v for k, v in (("workers", a.workers), ("threads", a.threads)) if v}
    if overrides:
        config = config.model_copy(update=overrides)
    from features.store import open_store
    from serving.online import alias_version, load_scorer

    store = open_store(config.store)
    scorer = load_scorer(config, store, alias_version(config))
    ids = account_ids(settings, store, scorer)
    print(f"{len(ids)} accounts served; measuring the floor ...", file=sys.stderr)
    floor_stats = floor(store, scorer, ids, a.requests)
    server = Server(config, root)
    try:
        server.wait_ready()
        server.sample()
        print("single client ...", file=sys.stderr)
        single, single_errors = single_client(server.base, ids, a.requests)
        loads = []
        for c in [int(x) for x in a.clients.split(",") if x]:
            print(f"{c} clients ...", file=sys.stderr)
            loads.append(concurrent(server.base, ids, c, a.seconds))
        time.sleep(1.0)
        rss = [*server.rss, server.rss_mb()]
    finally:
        server.stop()
    ratio = single["p99_ms"] / floor_stats["p99_ms"]
    load_notes = "; ".join(
        f"{x['clients']} clients {x['rps']:.0f} req/s p50 {x['p50_ms']:.1f} p99 "
        f"{x['p99_ms']:.1f} ms errors {x['errors']}"
        for x in loads
    )
    emit(
        [
            {
                "case": f"serve /score, 1 account, p99 ({config.workers}w x {config.threads}t)",
                "seconds": single["p99_ms"] / 1000,
                "baseline_seconds": floor_stats["p99_ms"] / 1000,
                "baseline": "in-process lookup + predict + explain, 1 account (p99)",
                "peak_mb": max(rss),
                "p99_ratio": ratio,
                "single_client": single | {"errors": single_errors, "requests": a.requests},
                "floor": floor_stats,
                "load": loads,
                "rss_mb": {"start": rss[0], "end": rss[-1], "max": max(rss), "samples": len(rss)},
                "notes": (
                    f"single client p50 {single['p50_ms']:.1f} p99 {single['p99_ms']:.1f} ms, "
                    f"errors {single_errors}; floor p50 {floor_stats['p50_ms']:.1f} p99 "
                    f"{floor_stats['p99_ms']:.1f} ms; {load_notes}; server RSS start "
                    f"{rss[0]:.0f} end {rss[-1]:.0f} max {max(rss):.0f} MB"
                ),
            }
        ]
    )


if __name__ == "__main__":
    main()

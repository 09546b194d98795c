"""The labeling page in a real browser: how long from a keypress to the next item on screen.

gunicorn (gthread, 2 workers x 4 threads) runs config.wsgi with DJANGO_DEBUG=0 on
127.0.0.1:<free port>, on its own PostgreSQL database (annotation_bench_browser: dropped,
created and migrated by each run) and Redis db 14 as the broker (no worker runs; whatever
the web app enqueues is purged at the end), as bench/bench_api.py does. One project holds
10,000 text items (COPY, no vectors, so no round starts); 2,000 are queued through
annotation.services.rounds.round_queue with a budget equal to the queued cost.

Headless Chromium (/usr/bin/chromium, through Playwright) signs in as one annotator and
labels on /projects/{id}/label/ with trusted key events (1, 2 or 3), two runs, each
bounded in items and in time:
  (a) a fast human: ~150 ms between the item appearing and the next key;
  (b) no pause: the next key as soon as the item is on screen.

Everything is timed inside the page with performance.now(): a capturing keydown listener
notes each key's event.timeStamp and the item on screen, a MutationObserver notes when the
item's text changes, and the next animation frame after that change (the frame that
paints it). Latency = first change to another item after the key - the key's timeStamp.
Time to first item = the first item's frame since navigation start (performance
timeOrigin), over several fresh loads of the page. The driver's own round trips are not in
any figure: they only pace the keys.

Prints the figures and writes var/bench_browser.json. Goal: keypress -> next item p95 <
50 ms (the page prefetches the next item, so the key shows it from memory).

    python -m bench.bench_browser [--items 150] [--seconds 90] [--loads 8]
"""

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import free_port, fresh_database, purge_broker, start_gunicorn, stop_gunicorn

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = os.environ.get(
    "BENCH_BROWSER_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/annotation_bench_browser"
)
BENCH_BROKER = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/14")
ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789abcdef",
    "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    "DJANGO_LOG_LEVEL": "WARNING",
    "DJANGO_SECURE_COOKIES": "0",  # plain http on 127.0.0.1: the session cookie must travel
    "DATABASE_URL": BENCH_DB,
    "CELERY_BROKER_URL": BENCH_BROKER,
}

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
POOL = 10_000
QUEUED = 2_000
LABELS = ["positive", "negative", "neutral"]
USERNAME, PASSWORD = "bench-annotator", "bench-annotator-password"
PAUSE_S = 0.150
GOAL_P95_MS = 50.0
WAIT_MS = 10_000  # the longest the driver waits for one item before it stops the run
OUT = ROOT / "var" / "bench_browser.json"
TEXT_JS = "document.querySelector('#item p.text')?.textContent"

# Runs in every page before its own scripts: notes keys and item changes on the page's clock.
PROBE_JS = """
(() => {
  const b = (window.__bench = { keys: [], shows: [] });
  performance.setResourceTimingBufferSize(100000);
  const text = () => {
    const p = document.querySelector("#item p.text");
    return p ? p.textContent : "";
  };
  let shown = "";
  window.addEventListener("keydown", (e) => {
    b.keys.push({ t: e.timeStamp, now: performance.now(), key: e.key, text: text() });
  }, true);
  new MutationObserver(() => {
    const t = text();
    if (!t || t === shown) return;
    shown = t;
    const entry = { t: performance.now(), frame: null, text: t };
    b.shows.push(entry);
    requestAnimationFrame(() => { entry.frame = performance.now(); });
  }).observe(document, { childList: true, subtree: true, characterData: true });
})();
"""


def build_project() -> int:
    """The 10,000-item project, QUEUED of them queued (budget = their cost), and the
    annotator. Returns the project id."""
    from decimal import Decimal

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone

    from annotation.models import Item, Membership, Project, Round
    from annotation.services.rounds import round_queue

    rng = random.Random(0)
    project = Project.objects.create(
        name="bench browser", labels=LABELS, budget=Decimal(0), acquisition="random", kind="text"
    )
    words = ["good", "bad", "fine", "awful", "great", "meh", "service", "food", "price", "staff"]
    now = timezone.now()
    columns = (
        'project_id, external_id, text, image, meta, cost, "group", status, acquisition, '
        "skip_count, featurize_error"
    )
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY annotation_item ({columns}, created_at) FROM STDIN") as copy:
            for i in range(POOL):
                text = f"#{i}: " + " ".join(rng.choices(words, k=30))  # unique texts
                copy.write_row(
                    (project.pk, f"r{i}", text, "", "{}", 1, "", "unlabeled", "", 0, "", now)
                )
    ids = list(
        Item.objects.filter(project=project).order_by("id").values_list("id", flat=True)[:QUEUED]
    )
    Project.objects.filter(pk=project.pk).update(budget=len(ids))
    rnd = Round.objects.create(project=project, number=1, strategy="random")
    Project.objects.filter(pk=project.pk).update(round=F("round") + 1)
    round_queue(round_id=rnd.pk, picks=[(i, 1.0 - k / 10_000) for k, i in enumerate(ids)])
    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD)
    Membership.objects.create(project=project, user=user)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    call_command("collectstatic", interactive=False, verbosity=0)  # DEBUG=0: whitenoise
    return project.pk


def latencies(bench: dict) -> tuple[list[float], list[float]]:
    """Per key: (ms to the next item in the DOM, ms to the frame that paints it)."""
    dom, frame = [], []
    for key in bench["keys"]:
        shown = next(
            (s for s in bench["shows"] if s["t"] >= key["now"] and s["text"] != key["text"]),
            None,
        )
        if shown is not None:
            dom.append(shown["t"] - key["t"])
            frame.append((shown["frame"] or shown["t"]) - key["t"])
    return dom, frame


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "median_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "n": len(values),
        "median_ms": round(float(np.percentile(values, 50)), 2),
        "p95_ms": round(float(np.percentile(values, 95)), 2),
        "max_ms": round(float(max(values)), 2),
    }


def sign_in(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def label_run(page, url: str, *, pause: float, items: int, seconds: float, seed: int) -> dict:
    """Open the labeling page and label up to `items` items by keyboard within `seconds`."""
    rng = random.Random(seed)
    page.goto(url)
    page.wait_for_function(f"!!{TEXT_JS}", timeout=WAIT_MS)
    deadline = time.monotonic() + seconds
    pressed, stopped = 0, ""
    while pressed < items:
        if time.monotonic() > deadline:
            stopped = f"time limit ({seconds:.0f} s)"
            break
        if pause:
            time.sleep(pause * rng.uniform(0.9, 1.1))  # reading and deciding
        shown = page.evaluate(TEXT_JS)
        page.keyboard.press(str(rng.randint(1, len(LABELS))))
        pressed += 1
        try:  # the next key once another item is on screen
            page.wait_for_function(
                f"(old) => {{ const t = {TEXT_JS}; return !!t && t !== old; }}",
                arg=shown,
                timeout=WAIT_MS,
                polling="raf",
            )
        except Exception:
            stopped = f"no item within {WAIT_MS / 1000:.0f} s after key {pressed}"
            break
    # Labels go out in the background: wait (bounded) until the outbox is empty.
    page.wait_for_function(
        "document.getElementById('sync').dataset.pending === '0'", timeout=WAIT_MS
    )
    bench = page.evaluate("window.__bench")
    dom, frame = latencies(bench)
    calls = page.evaluate(
        "performance.getEntriesByType('resource').map((e) => [e.name, e.duration])"
    )
    api = {
        name: [ms for url, ms in calls if url.endswith(f"/{name}/")]
        for name in ("next", "annotations")
    }
    sent = int(page.inner_text("#session").split()[0])  # labels the server accepted
    refused = page.inner_text("#sync")
    return {
        "pressed": pressed,
        "stopped": stopped,
        "dom": dom,
        "frame": frame,
        "api": api,
        "sent": sent,
        "refused": refused,
    }


def first_item_loads(page, url: str, loads: int) -> list[float]:
    """ms from navigation start to the frame that paints the first item, per fresh load."""
    times = []
    for _ in range(loads):
        page.goto(url)
        page.wait_for_function(
            "window.__bench.shows.length >= 1 && window.__bench.shows[0].frame !== null",
            timeout=WAIT_MS,
        )
        times.append(page.evaluate("window.__bench.shows[0].frame"))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=150, help="keys per run (at least 100)")
    parser.add_argument("--seconds", type=float, default=90.0, help="time limit per run")
    parser.add_argument("--loads", type=int, default=8, help="page loads for time to first item")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    if not shutil.which("createdb"):
        print("bench_browser: PostgreSQL client tools (createdb) are needed", file=sys.stderr)
        return 2
    if not Path(CHROMIUM).exists():
        print(f"bench_browser: {CHROMIUM} is needed (make chromium)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    os.environ.update(ENV)  # before Django is set up: this process builds the data
    t0 = time.monotonic()
    load = os.getloadavg()[0]
    fresh_database(BENCH_DB)
    project_id = build_project()
    from django.db import connections

    connections.close_all()
    print(
        f"setup: {POOL:,} items, {QUEUED:,} queued, in {time.monotonic() - t0:.1f} s; gunicorn "
        f"gthread {args.workers} workers x {args.threads} threads, DEBUG=0, PostgreSQL; "
        f"headless Chromium; load average {load:.1f} on {os.cpu_count()} cores"
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/projects/{project_id}/label/"
    log_path = ROOT / "var" / "bench-browser-gunicorn.log"
    log_path.parent.mkdir(exist_ok=True)
    server = start_gunicorn(port, args.workers, args.threads, log_path, env=ENV)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                context.add_init_script(PROBE_JS)
                page = context.new_page()
                page.set_default_timeout(WAIT_MS)
                sign_in(page, base)
                first = first_item_loads(page, url, args.loads)
                paused = label_run(
                    page, url, pause=PAUSE_S, items=args.items, seconds=args.seconds, seed=1
                )
                fast = label_run(
                    page, url, pause=0.0, items=args.items, seconds=args.seconds, seed=2
                )
                context.close()
            finally:
                browser.close()
    finally:
        stop_gunicorn(server)
        purge_broker(BENCH_BROKER)

    from annotation.models import Annotation

    stored = Annotation.objects.filter(item__project_id=project_id).count()
    pressed = paused["pressed"] + fast["pressed"]
    rows = [
        (f"key -> next item, {PAUSE_S * 1000:.0f} ms pause", summary(paused["frame"])),
        ("key -> next item, no pause", summary(fast["frame"])),
        ("  (in the DOM, 150 ms pause)", summary(paused["dom"])),
        ("  (in the DOM, no pause)", summary(fast["dom"])),
        ("time to first item", summary(first)),
        ("  (POST next/, no pause)", summary(fast["api"]["next"])),
        ("  (POST annotations/, no pause)", summary(fast["api"]["annotations"])),
    ]
    print(f"{'':34}{'median':>9}{'p95':>9}{'max':>9}{'n':>6}  goal")
    for i, (name, s) in enumerate(rows):
        goal = ""
        if i < 2 and s["p95_ms"] is not None:
            goal = f"p95 < {GOAL_P95_MS:.0f} ms " + (
                "ok" if s["p95_ms"] < GOAL_P95_MS else "MISSED"
            )
        cells = "".join(
            f"{s[k]:>9.1f}" if s[k] is not None else f"{'-':>9}"
            for k in ("median_ms", "p95_ms", "max_ms")
        )
        print(f"{name:34}{cells}{s['n']:>6}  {goal}")
    for name, run in (("(a)", paused), ("(b)", fast)):
        print(
            f"{name} {run['pressed']} keys, {run['sent']} labels accepted"
            + (f"; the page says: {run['refused']}" if run["refused"] else "")
        )
    print(
        f"labels stored {stored} of {pressed} keys; "
        + "; ".join(
            f"{n} stopped: {r['stopped']}"
            for n, r in (("(a)", paused), ("(b)", fast))
            if r["stopped"]
        )
    )
    result = {
        "setup": {
            "pool": POOL,
            "queued": QUEUED,
            "server": f"gunicorn gthread {args.workers}x{args.threads}, DEBUG=0",
            "chromium": CHROMIUM,
            "load_average_1min": round(load, 2),
            "cores": os.cpu_count(),
            "measured": "in the page: performance.now() / event.timeStamp; frame = the next "
            "animation frame after the item's text changed",
        },
        "goal_p95_ms": GOAL_P95_MS,
        "key_to_next_item_pause_150ms": summary(paused["frame"]),
        "key_to_next_item_no_pause": summary(fast["frame"]),
        "key_to_next_item_dom_pause_150ms": summary(paused["dom"]),
        "key_to_next_item_dom_no_pause": summary(fast["dom"]),
        "time_to_first_item": summary(first),
        "page_post_next_no_pause": summary(fast["api"]["next"]),
        "page_post_annotations_no_pause": summary(fast["api"]["annotations"]),
        "page_post_next_pause_150ms": summary(paused["api"]["next"]),
        "time_to_first_item_loads_ms": [round(x, 1) for x in first],
        "keys": pressed,
        "labels_stored": stored,
        "stopped": {"pause": paused["stopped"], "no_pause": fast["stopped"]},
        "seconds": round(time.monotonic() - t0, 1),
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}; total bench time {time.monotonic() - t0:.0f} s")
    ok = stored == pressed and not paused["stopped"] and not fast["stopped"]
    ok = ok and min(len(paused["frame"]), len(fast["frame"])) >= min(args.items, 100)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

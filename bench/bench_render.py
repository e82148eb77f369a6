"""Attention at scale (issue 9): bytes to the browser, paint time, extraction time and memory.

SmolLM2-135M (30 layers x 9 heads) on an English text cut to N = 64, 128, 256, 1024, 2048
tokens, all in one run, each figure next to its baseline:

- bytes sent to the browser. Ours: the view's first render, i.e. the component's JSON
  arguments as Streamlit sends them (overview payload; no head selected yet) plus every
  static file of the component. Baseline: bertviz's own ``head_view(all layers,
  html_action="return")`` HTML, for N <= 256 (past that it is gigabytes).
- paint, in headless Chromium driven by Playwright, from data arrival (the first byte of the
  data) to the first frame after the overview was drawn. Ours: a small page stands in for
  Streamlit's frontend, fetches the JSON, and posts it to the component's iframe exactly as
  Streamlit does; the component records when it painted. Baseline: bertviz's page (with
  require.js, d3 and jQuery inlined instead of its CDN) from the HTML's first byte to the
  first frame after its SVG lines exist, for N <= 128 (at 256 its page is over Streamlit's
  200 MB message limit).
- extraction: Headlight's `core.service.inference.analyse` (hooks, layer by layer into the compact
  form, statistics, next-token top-k) against transformers' eager forward as a user calls
  it, ``model(input_ids, output_attentions=True)``. Time: best of `REPEATS`, the two methods
  taking turns in one process, so that load from elsewhere hits both alike; the CPU seconds
  of those runs (all threads) are shown too, being less sensitive to load. Peak RSS growth:
  one run in a fresh process per method and N, from /proc (VmHWM, plus a 2 ms sampler).

Targets: bytes_ratio_n128 >= 100; paint_n2048_s <= bertviz_paint_n128_s;
extract_ratio_n2048 <= 1.3; mem_ratio_n2048 <= 1/3.
Last line: RESULT bytes_ratio_n128=<a> paint_n2048_s=<b> bertviz_paint_n128_s=<c>
extract_ratio_n2048=<d> mem_ratio_n2048=<e> PASS|FAIL

Usage: .venv/bin/python bench/bench_render.py (about 5 minutes on 2 cores).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from core.models.boundary import Tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODEL_ID = "smollm2-135m-instruct"
LENGTHS = (64, 128, 256, 1024, 2048)
BERTVIZ_BYTES_MAX_N = 256
BERTVIZ_PAINT_MAX_N = 128
REPEATS = 3
METHODS = ("eager", "streaming")
PAINT_REPEATS = 3
METHODS = ("eager", "streaming")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TARGETS = {"bytes_ratio": 100.0, "extract_ratio": 1.3, "mem_ratio": 1 / 3}
SENTENCES = (
    "The river carried sand and stories down to the harbour.",
    "In 1969 two people walked on the Moon for the first time.",
    "Constants such as 3.14159 and 2.71828 appear everywhere in physics.",
    "She said: never trust a model you have not looked inside!",
    "Attention heads often look back at the previous token or the first one.",
    "Our quarterly report, due on Friday, covers sales in Lisbon and Osaka.",
)


def text_of_length(model: Tokenizer, n_tokens: int) -> str:
    """Varied sentences cut at a token boundary: exactly `n_tokens` tokens for `model`."""
    text = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(n_tokens // 6 + 1))
    text = text[: model.tokenize(text).offsets[n_tokens - 1][1]]
    assert len(model.tokenize(text)) == n_tokens
    return text


# --- extraction, in a child process per (method, N) -------------------------------------


class _PeakSampler(threading.Thread):
    """Reads RSS every 2 ms; VmHWM alone would also count the peak of loading the model."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, _proc_status("VmRSS"))
            time.sleep(0.002)


def _proc_status(field: str) -> int:
    """A size from /proc/self/status, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} missing from /proc/self/status")


def _extractors(n_tokens: int) -> tuple[dict[str, Callable[[], object]], Callable[[], None]]:
    """``{method: run()}`` for N tokens, and a warm-up that runs both once on 16 tokens."""
    import torch

    from core.domain.analysis import AnalysisRequest
    from core.domain.settings import get_settings
    from core.models.huggingface.adapter import HuggingFaceModel
    from core.models.registry import load_registry
    from core.service.analysis_service import AnalysisService
    from core.service.inference import analyse

    settings = get_settings()
    loaded = AnalysisService(settings, load_registry(settings.registry_path)).load(MODEL_ID)[0]
    assert isinstance(loaded, HuggingFaceModel)
    full_max = settings.full_attention_max_mb * 1024 * 1024

    def make(method: str, n: int) -> Callable[[], object]:
        text = text_of_length(loaded, n)
        ids = torch.tensor([loaded.tokenize(text).ids])
        if method == "eager":

            def eager() -> object:
                with torch.inference_mode():
                    return loaded.hf_model(input_ids=ids, output_attentions=True)

            return eager
        request = AnalysisRequest(model_id=MODEL_ID, text=text)
        return lambda: analyse(loaded, request, full_attention_max_bytes=full_max)

    def warm_up() -> None:  # first-call allocations and lazy imports
        for method in METHODS:
            make(method, 16)()

    return {method: make(method, n_tokens) for method in METHODS}, warm_up


def child_memory(method: str, n_tokens: int, payload_path: str) -> None:
    """Peak RSS growth of one run of one method (a fresh process each); prints one JSON line."""
    runs, warm_up = _extractors(n_tokens)
    warm_up()
    before, hwm_before = _proc_status("VmRSS"), _proc_status("VmHWM")
    sampler = _PeakSampler()
    sampler.start()
    result = runs[method]()
    sampler.running = False
    sampler.join()
    hwm = _proc_status("VmHWM")
    # VmHWM is exact when this run set it; else the model's loading peak was higher.
    growth = max(sampler.peak, hwm if hwm > hwm_before else 0) - before
    if method == "streaming":
        Path(payload_path).write_text(json.dumps(_component_args(result)))
    print(json.dumps({"growth": growth}))


def child_time(n_tokens: int) -> None:
    """Best-of-`REPEATS` wall seconds of each method, run in turns so that load elsewhere hits
    both, and the CPU seconds (all threads) of that best run; prints one JSON line."""
    runs, warm_up = _extractors(n_tokens)
    warm_up()
    times: dict[str, list[tuple[float, float]]] = {method: [] for method in METHODS}
    for _ in range(REPEATS):
        for method in METHODS:
            started, cpu = time.perf_counter(), time.process_time()
            runs[method]()
            times[method].append((time.perf_counter() - started, time.process_time() - cpu))
    print(json.dumps({method: min(samples) for method, samples in times.items()}))


def _component_args(analysis: object) -> dict:
    """What Streamlit sends for the view's first render: its JSON arguments, as the call builds them."""
    from core.attention.payload import overview_payload

    return {"overview": overview_payload(analysis), "detail": None, "default": None, "key": "bench.av"}  # type: ignore[arg-type]


def run_child(*args: object) -> dict:
    """Run this script as a child with `args`; its last stdout line is JSON."""
    command = [sys.executable, __file__, "--child", *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- bertviz baseline ----------------------------------------------------------------------


def bertviz_pages(lengths: list[int], out_dir: Path) -> dict[int, int]:
    """bertviz's own head view per N (bytes), saved as an offline page for the paint test."""
    import re

    import torch
    from bertviz import head_view

    from core.domain.settings import get_settings
    from core.models.huggingface.adapter import HuggingFaceModel
    from core.models.registry import load_registry
    from core.service.analysis_service import AnalysisService

    settings = get_settings()
    loaded = AnalysisService(settings, load_registry(settings.registry_path)).load(MODEL_ID)[0]
    assert isinstance(loaded, HuggingFaceModel)
    assets = ROOT / "ui" / "assets"
    # What Headlight's offline bertviz does: d3 and jQuery as globals, require.js, named modules.
    libraries = "".join(
        f"<script>\n{(assets / name).read_text()}\n</script>\n"
        for name in ("d3.min.js", "jquery.min.js", "require.js")
    )
    libraries += (
        "<script>define('d3', [], () => window.d3); define('jquery', [], () => window.jQuery);</script>\n"
    )
    sizes = {}
    for n in lengths:
        text = text_of_length(loaded, n)
        ids = loaded.tokenize(text).ids
        with torch.inference_mode():
            out = loaded.hf_model(input_ids=torch.tensor([ids]), output_attentions=True, logits_to_keep=1)
        tokens = loaded.token_strings(ids)
        html = head_view(out.attentions, tokens, html_action="return").data
        del out
        sizes[n] = len(html.encode())
        if n <= BERTVIZ_PAINT_MAX_N:
            html = re.sub(r'<script src="https://cdnjs[^"]*"></script>', "", html)
            html = re.sub(r"require\.config\(\{.*?\}\);", "", html, count=1, flags=re.DOTALL)
            page = f"<!doctype html><html><head><meta charset='utf-8'>{PAINT_PROBE}</head><body>"
            (out_dir / f"bertviz_{n}.html").write_text(page + libraries + html + "</body></html>")
        del html
    return sizes


# Marks the first frame after bertviz created its lines (d3 adds #attention and every line
# in one task, so once #attention exists all lines do).
PAINT_PROBE = """<script>
(function poll() {
  if (!document.getElementById("attention")) { requestAnimationFrame(poll); return; }
  requestAnimationFrame(() => setTimeout(() => {
    window.painted = performance.timeOrigin + performance.now();
  }, 0));
})();
</script>"""

# Stands in for Streamlit's frontend: fetches the JSON arguments, parses them and posts the
# render message to the component, as Streamlit does; `arrival` is the data's first byte.
HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id="view" src="/frontend/index.html" style="width:1200px;height:900px;border:0"></iframe>
<script>
const view = document.getElementById("view");
window.addEventListener("message", async (event) => {
  if (event.data.type !== "streamlit:componentReady") return;
  const url = "/" + location.hash.slice(1);
  const text = await (await fetch(url)).text();
  const entry = performance.getEntriesByName(new URL(url, location.href).href)[0];
  window.arrival = performance.timeOrigin + entry.responseStart;
  view.contentWindow.postMessage({ type: "streamlit:render", args: JSON.parse(text), dfs: [] }, "*");
});
</script></body></html>"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the work directory, and the component's files under /frontend/."""

    def __init__(self, *args: object, work: Path, frontend: Path, **kwargs: object) -> None:
        self.work, self.frontend = work, frontend
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def translate_path(self, path: str) -> str:
        path = path.split("?")[0].split("#")[0]
        if path.startswith("/frontend/"):
            return str(self.frontend / path.removeprefix("/frontend/"))
        return str(self.work / path.lstrip("/"))

    def log_message(self, *args: object) -> None:
        return None


def measure_paints(work: Path, frontend: Path, ours: list[int], bertviz: list[int]) -> dict:
    """Median paint seconds per (kind, N) in headless Chromium."""
    from playwright.sync_api import sync_playwright

    (work / "harness.html").write_text(HARNESS)
    handler = functools.partial(_Handler, work=work, frontend=frontend)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    results: dict[tuple[str, int], float] = {}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for n in ours:
                samples = []
                for _ in range(PAINT_REPEATS):
                    page = browser.new_page(viewport={"width": 1220, "height": 1000})
                    page.goto(f"{base}/harness.html#args_{n}.json")
                    frame = page.wait_for_selector("#view").content_frame()
                    frame.wait_for_function(
                        "() => window.headlightTimings && headlightTimings.overview", timeout=120_000
                    )
                    painted = frame.evaluate("headlightTimings.overview")
                    samples.append((painted - page.evaluate("window.arrival")) / 1000)
                    page.close()
                results[("ours", n)] = statistics.median(samples)
            for n in bertviz:
                samples = []
                for _ in range(PAINT_REPEATS):
                    page = browser.new_page(viewport={"width": 1220, "height": 1000})
                    page.goto(f"{base}/bertviz_{n}.html", wait_until="commit", timeout=300_000)
                    page.wait_for_function("() => window.painted", timeout=300_000, polling=100)
                    arrival = page.evaluate(
                        "performance.timeOrigin + performance.getEntriesByType('navigation')[0].responseStart"
                    )
                    samples.append((page.evaluate("window.painted") - arrival) / 1000)
                    page.close()
                results[("bertviz", n)] = statistics.median(samples)
            browser.close()
    finally:
        server.shutdown()
    return results


def main() -> None:
    from ui.attention_view import FRONTEND

    static_bytes = sum(path.stat().st_size for path in FRONTEND.rglob("*") if path.is_file())
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        work = Path(tmp)
        extraction: dict[tuple[str, int], dict] = {}
        for n in LENGTHS:
            timed = run_child("time", n)
            for method in METHODS:
                growth = run_child("memory", method, n, work / f"args_{n}.json")["growth"]
                seconds, cpu = timed[method]
                extraction[(method, n)] = {"seconds": seconds, "cpu": cpu, "growth": growth}
                print(
                    f"  extraction {method:>9} N={n:>4}: {seconds:6.2f} s ({cpu:6.2f} s CPU), "
                    f"peak RSS +{growth / 1e6:7.0f} MB",
                    flush=True,
                )
        bertviz_bytes = bertviz_pages([n for n in LENGTHS if n <= BERTVIZ_BYTES_MAX_N], work)
        paints = measure_paints(
            work, FRONTEND, list(LENGTHS), [n for n in LENGTHS if n <= BERTVIZ_PAINT_MAX_N]
        )
        ours_bytes = {n: (work / f"args_{n}.json").stat().st_size for n in LENGTHS}

    print(f"static files of the component: {static_bytes:,} bytes (cacheable, counted below)")
    header = (
        f"{'N':>5} {'ours KB':>9} {'bertviz MB':>11} {'ratio':>7} {'paint s':>8} {'bertviz s':>10} "
        f"{'extract s':>10} {'eager s':>8} {'ratio':>6} {'CPU ratio':>10} "
        f"{'RSS+ MB':>8} {'eager MB':>9} {'ratio':>6}"
    )
    print(header)
    for n in LENGTHS:
        ours = ours_bytes[n] + static_bytes
        theirs = bertviz_bytes.get(n)
        stream, eager = extraction[("streaming", n)], extraction[("eager", n)]
        bertviz_paint = paints.get(("bertviz", n))
        print(
            f"{n:>5} {ours / 1e3:>9.0f} "
            f"{(f'{theirs / 1e6:.1f}' if theirs else 'n/a'):>11} "
            f"{(f'{theirs / ours:.0f}x' if theirs else 'n/a'):>7} "
            f"{paints[('ours', n)]:>8.3f} {(f'{bertviz_paint:.2f}' if bertviz_paint else 'n/a'):>10} "
            f"{stream['seconds']:>10.2f} {eager['seconds']:>8.2f} "
            f"{stream['seconds'] / eager['seconds']:>6.2f} {stream['cpu'] / eager['cpu']:>10.2f} "
            f"{stream['growth'] / 1e6:>8.0f} {eager['growth'] / 1e6:>9.0f} "
            f"{stream['growth'] / eager['growth']:>6.2f}"
        )
    bytes_ratio = bertviz_bytes[128] / (ours_bytes[128] + static_bytes)
    paint_2048 = paints[("ours", 2048)]
    bertviz_paint_128 = paints[("bertviz", 128)]
    extract_ratio = extraction[("streaming", 2048)]["seconds"] / extraction[("eager", 2048)]["seconds"]
    mem_ratio = extraction[("streaming", 2048)]["growth"] / extraction[("eager", 2048)]["growth"]
    passed = (
        bytes_ratio >= TARGETS["bytes_ratio"]
        and paint_2048 <= bertviz_paint_128
        and extract_ratio <= TARGETS["extract_ratio"]
        and mem_ratio <= TARGETS["mem_ratio"]
    )
    print(
        f"RESULT bytes_ratio_n128={bytes_ratio:.0f} paint_n2048_s={paint_2048:.3f} "
        f"bertviz_paint_n128_s={bertviz_paint_128:.2f} extract_ratio_n2048={extract_ratio:.2f} "
        f"mem_ratio_n2048={mem_ratio:.2f} {'PASS' if passed else 'FAIL'}"
    )


if __name__ == "__main__":
    if sys.argv[1:3] == ["--child", "memory"]:
        child_memory(sys.argv[3], int(sys.argv[4]), sys.argv[5])
    elif sys.argv[1:3] == ["--child", "time"]:
        child_time(int(sys.argv[3]))
    else:
        main()

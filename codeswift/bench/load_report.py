"""The report of `codeswift bench --mode load`: percentiles, per engine and editor count
aggregates, identical outputs against the reference engine, the table, results.json, load.md
and the summary line."""
from __future__ import annotations

import json
import math
from pathlib import Path


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's
    default); None for no values."""
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    pos = (len(xs) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def _ratio(a, b) -> float | None:
    return a / b if a is not None and b else None


def aggregate(rows: list[dict]) -> dict[str, dict[int, dict]]:
    """Per engine and editor count: throughput, per-request speed, latency and TTFT
    percentiles, tokens per step and identical outputs (rows marked by `mark_identical`)."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["engine"], r["editors"]), []).append(r)
    out: dict[str, dict[int, dict]] = {}
    for (engine, n), rs in sorted(groups.items(), key=lambda kv: kv[0][1]):
        ok = [r for r in rs if not r.get("error")]
        gen = sum(r["generated"] for r in ok)
        wall = (max(r["end_s"] for r in ok) - min(r["start_s"] for r in ok)) if ok else 0.0
        busy = sum(r["latency_ms"] for r in ok) / 1000
        lat = [r["latency_ms"] for r in ok]
        ttft = [r["ttft_ms"] for r in ok]
        stepped = [r for r in ok if r.get("steps")]
        compared = [r for r in rs if r.get("identical") is not None]
        out.setdefault(engine, {})[n] = {
            "requests": len(rs), "errors": len(rs) - len(ok), "retries": sum(r.get("retries", 0) for r in rs),
            "generated": gen, "wall_s": round(wall, 3),
            "throughput_tok_s": gen / wall if wall > 0 else None,
            "tok_s_per_request": gen / busy if busy > 0 else None,
            "latency_ms_p50": percentile(lat, 50), "latency_ms_p95": percentile(lat, 95),
            "ttft_ms_p50": percentile(ttft, 50), "ttft_ms_p95": percentile(ttft, 95),
            "accepted_per_step": (sum(r["generated"] for r in stepped) / sum(r["steps"] for r in stepped)
                                  if stepped else None),
            "draft_acceptance": _draft_acceptance(ok),
            "identical": sum(bool(r["identical"]) for r in compared), "compared": len(compared),
        }
    return out


def _draft_acceptance(rows: list[dict]) -> float | None:
    """Accepted / drafted tokens, where the server reports both (vLLM's speculative decoding)."""
    drafted = sum(r.get("drafted_tokens") or 0 for r in rows)
    return sum(r.get("accepted_tokens") or 0 for r in rows) / drafted if drafted else None


def reference_engine(rows: list[dict]) -> str | None:
    """Whose answers the others are compared with: plain vLLM if it ran, else today's serve,
    else the first engine with an answer."""
    have = {r["engine"] for r in rows if not r.get("error")}
    for name in ("vllm", "serve"):
        if name in have:
            return name
    return next((r["engine"] for r in rows if not r.get("error")), None)


def mark_identical(rows: list[dict]) -> tuple[str | None, list[dict]]:
    """Set each row's `identical`: its text equals the reference engine's first answer to the
    same request (lowest editor count, lowest editor); None for that reference answer itself,
    failed requests and requests the reference never answered. Returns the reference engine
    and the divergences (where each one starts)."""
    ref = reference_engine(rows)
    first: dict[tuple, dict] = {}
    for r in sorted((r for r in rows if r["engine"] == ref and not r.get("error")),
                    key=lambda r: (r["editors"], r["editor"])):
        first.setdefault(_key(r), r)
    divergences = []
    for r in rows:
        base = first.get(_key(r))
        if r.get("error") or base is None or base is r:
            r["identical"] = None
            continue
        r["identical"] = r["text"] == base["text"]
        if not r["identical"]:
            j = next((i for i, (a, b) in enumerate(zip(r["text"], base["text"])) if a != b),
                     min(len(r["text"]), len(base["text"])))
            divergences.append({"engine": r["engine"], "editors": r["editors"], "editor": r["editor"],
                                "task_id": r["task_id"], "request": r["request"], "reference": ref,
                                "at_char": j, "text": r["text"][j:j + 40], "reference_text": base["text"][j:j + 40],
                                "near_tie": None})
    return ref, divergences


def _key(r: dict) -> tuple:
    return r["task_id"], r["request"]


def summary_line(summary: dict[str, dict[int, dict]], identical: int, compared: int) -> str:
    """`throughput_vs_serve=X.XX p95_vs_serve=Y.YY proposer_vs_ngram=Z.ZZ identical=N/M`:
    throughput and p95 latency of vllm-codeswift over serve's at 16 editors (else the most
    editors both ran), tokens/s per request of vllm-codeswift over vllm-ngram at the fewest
    editors both ran; "-" where an engine did not run."""
    thr, p95 = _versus(summary, "vllm-codeswift", "serve", high=True)
    prop, _ = _versus(summary, "vllm-codeswift", "vllm-ngram", high=False)
    return (f"throughput_vs_serve={_fmt(thr[0])} p95_vs_serve={_fmt(p95[0])} "
            f"proposer_vs_ngram={_fmt(prop[1])} identical={identical}/{compared}")


def comparison_points(summary: dict[str, dict[int, dict]]) -> dict:
    """The editor counts the summary line's ratios are taken at (for results.json)."""
    return {"throughput_vs_serve_editors": _common(summary, "vllm-codeswift", "serve", high=True),
            "proposer_vs_ngram_editors": _common(summary, "vllm-codeswift", "vllm-ngram", high=False)}


def _common(summary, a: str, b: str, high: bool) -> int | None:
    ns = sorted(set(summary.get(a, {})) & set(summary.get(b, {})))
    if not ns:
        return None
    if high:
        return 16 if 16 in ns else ns[-1]
    return ns[0]


def _versus(summary, a: str, b: str, high: bool):
    """((throughput ratio, per-request ratio), (p95 ratio, -)) of a over b at their common point."""
    n = _common(summary, a, b, high)
    if n is None:
        return (None, None), (None, None)
    x, y = summary[a][n], summary[b][n]
    return ((_ratio(x["throughput_tok_s"], y["throughput_tok_s"]), _ratio(x["tok_s_per_request"], y["tok_s_per_request"])),
            (_ratio(x["latency_ms_p95"], y["latency_ms_p95"]), None))


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)



COLUMNS = ("engine", "editors", "requests", "errors", "tok/s", "tok/s/req", "p50 ms", "p95 ms",
           "TTFT p50", "TTFT p95", "tokens/step", "draft acc", "identical")


def table_rows(summary: dict[str, dict[int, dict]]) -> list[list[str]]:
    out = []
    for engine, per in summary.items():
        for n, a in per.items():
            out.append([engine, str(n), str(a["requests"]), str(a["errors"]), _fmt(a["throughput_tok_s"], ".1f"),
                        _fmt(a["tok_s_per_request"], ".1f"), _fmt(a["latency_ms_p50"], ".0f"),
                        _fmt(a["latency_ms_p95"], ".0f"), _fmt(a["ttft_ms_p50"], ".0f"),
                        _fmt(a["ttft_ms_p95"], ".0f"), _fmt(a["accepted_per_step"]), _fmt(a["draft_acceptance"]),
                        f"{a['identical']}/{a['compared']}" if a["compared"] else "ref"])
    return out


def markdown(summary: dict[str, dict[int, dict]], meta: dict, ref: str | None, line: str) -> str:
    lines = ["# codeswift bench --mode load", "",
             f"{meta['cpu']}; model {meta['model']} (backend {meta['backend']}, device {meta['device']}); "
             f"{len(meta['task_ids'])} tasks, {meta['requests_per_editor']} requests per editor, "
             f"max {meta['max_tokens']} tokens; reference for identical outputs: {ref or '-'}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(summary)]
    for name, why in meta["skipped"].items():
        lines.append(f"\n{name}: skipped: {why}")
    lines += ["", f"`{line}`", ""]
    return "\n".join(lines)


def report_load(rows: list[dict], meta: dict, out_dir: Path, console) -> dict:
    """results.json, load.md, the table, divergences, and the summary line last on stdout."""
    from rich.table import Table
    ref, divergences = mark_identical(rows)
    summary = aggregate(rows)
    compared = [r for r in rows if r.get("identical") is not None]
    identical = sum(bool(r["identical"]) for r in compared)
    line = summary_line(summary, identical, len(compared))
    meta = {**meta, "reference": ref, **comparison_points(summary)}
    jsummary = {e: {str(n): a for n, a in per.items()} for e, per in summary.items()}
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "summary": jsummary, "divergences": divergences,
                                                      "summary_line": line, "rows": rows}, indent=1))
    (out_dir / "load.md").write_text(markdown(summary, meta, ref, line))
    t = Table(title=f"codeswift bench — load, {meta['cpu']}")
    for col in COLUMNS:
        t.add_column(col, justify="right")
    for r in table_rows(summary):
        t.add_row(*r)
    console.print(t)
    console.print(f"  identical outputs: each answer against {ref or '-'}'s first answer to the same request")
    for name, why in meta["skipped"].items():
        console.print(f"  {name}: skipped: {why}")
    for d in divergences:
        console.print(f"  divergence {d['engine']} x{d['editors']} editor {d['editor']} {d['task_id']}#{d['request']} "
                      f"at char {d['at_char']}: {d['text']!r} vs {d['reference']} {d['reference_text']!r} "
                      "(no logits here: near-tie not checked)")
    errors = [r for r in rows if r.get("error")]
    for r in errors[:5]:
        console.print(f"  error {r['engine']} x{r['editors']} {r['task_id']}#{r['request']}: {r['error']}")
    console.print(f"results: {out_dir / 'results.json'}, table: {out_dir / 'load.md'}")
    print(line, flush=True)
    return summary

"""Benchmark aggregation and output: rich table, results.json, speedup.png, summary line."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from .methods import reference


def _sum(rows, key):
    return sum(r[key] for r in rows if r.get(key) is not None)


def aggregate(rows: list[dict], methods: list[str]) -> dict[str, dict]:
    """Per method: requests, timings, speedups against its family's references, identical
    outputs, per-source drafts and quality."""
    by = {m: [r for r in rows if r["method"] == m] for m in methods}
    out = {}
    for m, rs in by.items():
        if not rs:
            continue
        # Each method is compared with its own family's baselines (llama.cpp vs llamacpp-ar/-pld).
        ar, pld = by.get(reference(m), []), by.get(reference(m, "pld"), [])
        dec, pre, gen = _sum(rs, "decode_ms"), _sum(rs, "prefill_ms"), _sum(rs, "generated")
        steps = [r for r in rs if r.get("steps")]
        agg = {
            "requests": len(rs), "generated": gen,
            "prefill_ms_mean": pre / len(rs), "decode_ms_total": dec,
            "decode_tok_s": gen / dec * 1000 if dec else None,
            "accepted_per_step": (_sum(steps, "generated") / _sum(steps, "steps")) if steps else None,
            "identical": sum(r["identical"] for r in rs),
            "divergences_not_near_tie": sum(1 for r in rs if not r["identical"] and not r.get("near_tie")),
            "reference": reference(m), "pld_reference": reference(m, "pld") if pld else None,
        }
        if ar:
            agg["decode_speedup_vs_ar"] = _sum(ar, "decode_ms") / dec if dec else None
            agg["e2e_speedup_vs_ar"] = (_sum(ar, "decode_ms") + _sum(ar, "prefill_ms")) / (dec + pre)
            per = [a["decode_ms"] / r["decode_ms"] for a, r in zip(ar, rs) if r["decode_ms"] > 0 and a["generated"] > 1]
            agg["decode_speedup_per_request"] = per
            agg["decode_speedup_geomean"] = statistics.geometric_mean(per) if per else None
        if pld:
            agg["decode_speedup_vs_pld"] = _sum(pld, "decode_ms") / dec if dec else None
        if any("cache_hit" in r for r in rs):
            served = _sum(rs, "served_ms")
            agg["served_from_cache"] = sum(bool(r.get("cache_hit")) for r in rs)
            agg["remembered_answers"] = sum(bool(r.get("remembered_answer")) for r in rs)
            agg["cache_identical"] = sum(bool(r.get("cache_identical")) for r in rs)
            agg["served_e2e_speedup_vs_ar"] = ((_sum(ar, "decode_ms") + _sum(ar, "prefill_ms")) / served
                                               if ar and served else None)
            verified = _sum(rs, "verified_ms")
            agg["verified_e2e_speedup_vs_ar"] = ((_sum(ar, "decode_ms") + _sum(ar, "prefill_ms")) / verified
                                                 if ar and verified else None)
        src: dict[str, dict] = {}
        for r in rs:
            for name, s in (r.get("per_source") or {}).items():
                d = src.setdefault(name, {"proposed": 0, "accepted_tokens": 0})
                d["proposed"] += s.get("proposed", 0)
                d["accepted_tokens"] += s.get("accepted_tokens", 0)
        agg["per_source"] = src
        q = [r for r in rs if "exact_match" in r]
        if q:
            agg["exact_match"] = sum(r["exact_match"] for r in q) / len(q)
            agg["edit_similarity"] = sum(r["edit_similarity"] for r in q) / len(q)
        out[m] = agg
    return out


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def report(rows: list[dict], meta: dict, methods: list[str], out_dir: Path, console) -> dict:
    """Write results.json and speedup.png to `out_dir`, print the table, then the summary line
    last on stdout; the aggregate per method."""
    from rich.table import Table
    agg = aggregate(rows, methods)
    if meta.get("mode") == "long":
        long_aggregate(rows, agg)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps({"meta": meta, "summary": agg, "rows": rows}, indent=1))
    t = Table(title=f"codeswift bench — {meta['mode']}, {meta['device']} {meta['dtype']}")
    for col in ("method", "requests", "prefill ms", "decode tok/s", "tokens/step", "decode x ar",
                "decode x pld", "e2e x ar", "identical"):
        t.add_column(col, justify="right")
    for m, a in agg.items():
        t.add_row(m, str(a["requests"]), _fmt(a["prefill_ms_mean"], ".0f"), _fmt(a["decode_tok_s"], ".1f"),
                  _fmt(a["accepted_per_step"]), _fmt(a.get("decode_speedup_vs_ar")),
                  _fmt(a.get("decode_speedup_vs_pld")), _fmt(a.get("e2e_speedup_vs_ar")),
                  f"{a['identical']}/{a['requests']}")
    console.print(t)
    for ref in ("ar", "llamacpp-ar"):
        if "exact_match" in agg.get(ref, {}):
            console.print(f"  quality of {ref}'s greedy output vs gold: exact match {agg[ref]['exact_match']:.2%}, "
                          f"edit similarity {agg[ref]['edit_similarity']:.3f}")
    if any(a["reference"] == "llamacpp-ar" for a in agg.values()):
        console.print("  llama.cpp methods: 'x ar' and 'x pld' compare with llamacpp-ar and llamacpp-pld")
    for m, a in agg.items():
        if a["per_source"]:
            console.print(f"  {m} per source: " + ", ".join(
                f"{n}: {d['accepted_tokens']} accepted tokens from {d['proposed']} drafts"
                for n, d in a["per_source"].items()))
    for m, a in agg.items():
        if "served_from_cache" in a:
            who = "llama.vscode's result cache" if m == "llama-server" else "the editor (verifyCached false)"
            console.print(f"  {m} as {who} serves it: {a['served_from_cache']}/{a['requests']} requests "
                          f"from the completion cache without a forward pass ({a['cache_identical']} of them "
                          f"the model's fresh answer), e2e x ar {_fmt(a.get('served_e2e_speedup_vs_ar'))}")
            if m != "llama-server":
                console.print(f"  {m}: {a['remembered_answers']}/{a['requests']} requests drafted the rest of a "
                              f"remembered answer (pref)")
                console.print(f"  {m} as the editor serves it by default (verifyCached true: only same-place "
                              f"hits from the cache, the rest verified, always the model's answer): e2e x ar "
                              f"{_fmt(a.get('verified_e2e_speedup_vs_ar'))}")
    if meta.get("mode") == "long":
        long_report(agg, console)
    div = [r for r in rows if not r["identical"]]
    for r in div:
        console.print(f"  divergence {r['method']} {r['task_id']}#{r['request']} at token {r['diverge_at']}: "
                      f"top-2 gap {r['top2_gap']} ({'near-tie' if r['near_tie'] else 'NOT a near-tie'})")
    _plot(agg, out_dir / "speedup.png")
    main = agg.get("codeswift") or next((a for m, a in agg.items() if m.startswith("codeswift")), None)
    if main:
        n = main["requests"]
        line = (f"decode_speedup_vs_ar={_fmt(main.get('decode_speedup_vs_ar'))} "
                f"decode_speedup_vs_pld={_fmt(main.get('decode_speedup_vs_pld'))} "
                f"e2e_speedup_vs_ar={_fmt(main.get('e2e_speedup_vs_ar'))} identical={main['identical']}/{n}")
        print(line, flush=True)
    console.print(f"results: {out_dir / 'results.json'}, plot: {out_dir / 'speedup.png'}")
    return agg


BUCKET = 256                        # output tokens per bucket of the tokens/step curve


def step_curve(rows: list[dict]) -> list[float | None]:
    """Tokens/step per BUCKET-token span of the output (does acceleration hold as it grows?),
    from the rows' run-length per-step counts; the first token (from the prefill) is position 0."""
    tokens: dict[int, int] = {}
    steps: dict[int, int] = {}
    for r in rows:
        pos = 1
        for k, n in r.get("step_tokens") or ():
            for _ in range(n):
                b = pos // BUCKET
                tokens[b] = tokens.get(b, 0) + k
                steps[b] = steps.get(b, 0) + 1
                pos += k
    return [round(tokens[b] / steps[b], 2) if steps.get(b) else None for b in range(max(steps, default=-1) + 1)]


def _mean_ttft(rs: list[dict]) -> float | None:
    """Mean time to the first token: codeswift's `ttft_ms`, a peer's prefill (which yields it)."""
    vals = [r["ttft_ms"] if r.get("ttft_ms") is not None else r.get("prefill_ms") for r in rs]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def long_aggregate(rows: list[dict], agg: dict) -> None:
    """Long generation, per method: the tokens/step curve, first-token time against the
    reference's, repetition (distinct-n) and peak memory."""
    for m, a in agg.items():
        a["ttft_ms_mean"] = _mean_ttft([r for r in rows if r["method"] == m])
    for m, a in agg.items():
        rs = [r for r in rows if r["method"] == m]
        ref = agg.get(a["reference"], {})
        a["tokens_per_step_by_256"] = step_curve(rs)
        a["ttft_vs_ar"] = (a["ttft_ms_mean"] / ref["ttft_ms_mean"]) if ref.get("ttft_ms_mean") else None
        for n in (2, 3, 4):
            vals = [r[f"distinct_{n}"] for r in rs if r.get(f"distinct_{n}") is not None]
            a[f"distinct_{n}"] = round(sum(vals) / len(vals), 4) if vals else None
        a["peak_rss_mb"] = max((r.get("peak_rss_mb") or 0 for r in rs), default=None)


def long_report(agg: dict, console) -> None:
    for m, a in agg.items():
        curve = a["tokens_per_step_by_256"]
        line = (f"  {m}: {a['generated']} tokens, first token {_fmt(a.get('ttft_ms_mean'), '.0f')} ms "
                f"({_fmt(a['ttft_vs_ar'])}x {a['reference']}), distinct-2/3/4 {_fmt(a['distinct_2'], '.3f')}/"
                f"{_fmt(a['distinct_3'], '.3f')}/{_fmt(a['distinct_4'], '.3f')}, peak RSS {a['peak_rss_mb']} MB")
        if curve:
            line += f"; tokens/step per {BUCKET} output tokens: " + " ".join(_fmt(c) for c in curve)
        console.print(line)


def _plot(agg: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [m for m in agg if m not in ("ar", "llamacpp-ar")]
    if not names:
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    a1.bar(names, [agg[m].get("decode_speedup_vs_ar") or 0 for m in names], color="tab:blue", label="decode")
    a1.plot(names, [agg[m].get("e2e_speedup_vs_ar") or 0 for m in names], "o", color="tab:red", label="end to end")
    a1.axhline(1, color="gray", lw=0.8)
    a1.set_ylabel("speedup vs ar (time ratio)")
    a1.legend()
    a1.tick_params(axis="x", rotation=30)
    data = [agg[m].get("decode_speedup_per_request") or [0] for m in names]
    a2.boxplot(data, tick_labels=names)
    a2.axhline(1, color="gray", lw=0.8)
    a2.set_ylabel("decode speedup per request")
    a2.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

"""GET /metrics: Prometheus text with requests, latency, tokens, acceptance, speedup, cache hits."""
import httpx
from prometheus_client.parser import text_string_to_metric_families

from svc_testkit import CODE, make_app, serve


def samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_metrics_count_what_happened(engine, expected):
    with serve(make_app(engine)) as url:
        body = {"prefix": CODE[:100], "max_tokens": 20, "doc_id": "metrics-doc"}
        results = [httpx.post(url + "/v1/codeswift/complete", json=body).json() for _ in range(2)]
        httpx.post(url + "/infill", json={"input_prefix": 7})                 # a 422
        r = httpx.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    s = samples(r.text)
    assert s[("codeswift_http_requests_total", (("endpoint", "/v1/codeswift/complete"), ("status", "200")))] == 2
    assert s[("codeswift_http_requests_total", (("endpoint", "/infill"), ("status", "422")))] == 1
    assert s[("codeswift_http_request_duration_seconds_count", (("endpoint", "/v1/codeswift/complete"),))] == 2
    assert s[("codeswift_generated_tokens_total", ())] == sum(len(x["tokens"]) for x in results)
    assert s[("codeswift_prompt_tokens_total", ())] == sum(x["stats"]["prompt_tokens"] for x in results)
    # The second identical request reuses the first one's prompt KV (a prompt-cache hit).
    reused = sum(x["stats"]["reused_prompt_tokens"] for x in results)
    assert reused > 0 and s[("codeswift_prompt_reused_tokens_total", ())] == reused
    assert s[("codeswift_prompt_cache_hits_total", ())] >= 1
    assert s[("codeswift_accepted_tokens_per_step_count", ())] == 2
    assert abs(s[("codeswift_accepted_tokens_per_step_sum", ())]
               - sum(x["stats"]["accepted_per_step"] for x in results)) < 1e-6
    finish = results[0]["finish_reason"]
    assert s[("codeswift_completions_total", (("finish_reason", finish),))] == 2
    assert ("codeswift_estimated_speedup_count", ()) in s              # None without a cost curve
    for name, src in results[0]["stats"]["per_source"].items():
        assert ("codeswift_draft_accepted_tokens_total", (("source", name),)) in s
    assert s[("codeswift_queue_waiting", ())] == 0 and s[("codeswift_queue_running", ())] == 0

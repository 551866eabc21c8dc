"""`codeswift bench`: codeswift against plain greedy and prompt lookup, same model, one run.

Every method gets the same prompt, max tokens and stop rule for every request; methods are
interleaved per request so machine noise hits them alike. Outputs are compared token for
token with `ar` (plain `model.generate`); in bf16 a divergence is reported with the top-2
logit gap at its first token (a near-tie is numerics, anything else a bug).

Modules: `cli` (flags; light), `run` (the run loop over `BenchRun`), `methods` (method names,
families, references), `tasks` (task files, repositories, the requests an editor sends), `hf`,
`llamacpp` and `server` (the runners of each family), `compare` (divergence and quality),
`report` (table, results.json, plot, summary line); `load`, `load_engines` and `load_report`
for `--mode load` (simulated editors against `codeswift serve` processes, over HTTP).
"""

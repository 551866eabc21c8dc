"""codeswift on vLLM: codeswift's drafter as vLLM's speculative proposer.

`chains` is pure (no vLLM): per request, codeswift's sources (own context, the request's
repository index, the preference cache shared by all requests) merged by the `Drafter` into a
token tree, of which the engine verifies the best chain. `proposer` is the class vLLM loads
(`speculative_config={"method": "custom_class", "model": "codeswift.vllm.proposer.CodeswiftProposer"}`),
imported only inside vLLM's worker process. Nothing here imports vLLM at module level.
"""

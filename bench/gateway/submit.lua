-- wrk script for POST /v1/tasks (docs/BENCHMARKS.md, "HTTP gateway"): one echo task per request,
-- queued without a consumer (require_consumer false), with the bearer token from $TOKEN. No
-- response callback (it costs wrk CPU on this 2-core machine): the broker's `submitted` and
-- `rejected` totals, printed after the run, say what was accepted.
wrk.method = "POST"
wrk.body = '{"name":"echo","args":{"n":1},"options":{"require_consumer":false}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")

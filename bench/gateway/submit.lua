-- wrk script for POST /v1/tasks (docs/BENCHMARKS.md, "HTTP gateway"): one echo task per request,
-- queued without a consumer (require_consumer false), with the bearer token from $TOKEN.
wrk.method = "POST"
wrk.body = '{"name":"echo","args":{"n":1},"options":{"require_consumer":false}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")

local statuses = {}

response = function(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
    io.write("statuses:")
    for status, count in pairs(statuses) do io.write(string.format(" %d=%d", status, count)) end
    io.write("\n")
end

-- wrk script of scripts/bench-api.sh: each request asks for the next vCenter of vc-01 …
-- vc-NN, in the URL template's `{vc}`, and `done` prints one line of exact figures.
--
-- Environment: VCTP_BENCH_TEMPLATE (path with {vc}), VCTP_BENCH_VCENTERS (NN),
-- VCTP_BENCH_ENCODING (sent as Accept-Encoding when set: the bytes per request are then
-- the compressed ones on the wire).

local template = os.getenv("VCTP_BENCH_TEMPLATE")
local count = tonumber(os.getenv("VCTP_BENCH_VCENTERS"))
local encoding = os.getenv("VCTP_BENCH_ENCODING")
local headers = {}
if encoding and encoding ~= "" then
    headers["Accept-Encoding"] = encoding
end
next_index = 0

function setup(thread)
    -- Threads start at different vCenters, so they do not ask for the same one in step.
    thread:set("next_index", math.random(0, count - 1))
end

function request()
    next_index = (next_index + 1) % count
    local vcenter = string.format("vc-%02d", next_index + 1)
    return wrk.format("GET", (template:gsub("{vc}", vcenter)), headers)
end

function done(summary, latency, requests)
    local seconds = summary.duration / 1e6
    io.write(string.format(
        "RESULT p50_ms=%.2f p99_ms=%.2f max_ms=%.2f requests_per_s=%.0f requests=%d non_2xx=%d socket_errors=%d bytes_per_request=%.0f\n",
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        summary.requests / seconds, summary.requests, summary.errors.status,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        summary.bytes / math.max(summary.requests, 1)))
end

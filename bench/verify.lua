-- wrk script: POST /v1/verify with the credential from BENCH_CREDENTIAL in
-- "Authorization: Bearer" and an empty body.
-- BENCH_DELAY_MS, when set, makes each connection wait that many milliseconds before each
-- request, which paces the load for the fixed-rate runs of bench/run.sh.
local credential = os.getenv("BENCH_CREDENTIAL")
if credential == nil or credential == "" then
  error("BENCH_CREDENTIAL is not set: export the API key or token to send")
end

wrk.method = "POST"
wrk.path = "/v1/verify"
wrk.body = ""
wrk.headers["Authorization"] = "Bearer " .. credential

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

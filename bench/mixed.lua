-- wrk script: POST /v1/verify, cycling through the credentials in BENCH_CREDENTIALS
-- (separated by spaces), each sent in "Authorization: Bearer" with an empty body.
-- BENCH_DELAY_MS, when set, makes each connection wait that many milliseconds before each
-- request, as in verify.lua.
local credentials = {}
for credential in string.gmatch(os.getenv("BENCH_CREDENTIALS") or "", "%S+") do
  table.insert(credentials, credential)
end
if #credentials == 0 then
  error("BENCH_CREDENTIALS is not set: export the API keys or tokens to send, separated by spaces")
end

-- Each wrk thread runs its own copy of this script, so the counter needs no lock.
local next_index = 0

function request()
  next_index = next_index % #credentials + 1
  return wrk.format("POST", "/v1/verify", { ["Authorization"] = "Bearer " .. credentials[next_index] }, "")
end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

-- wrk script: POST an application/x-www-form-urlencoded body with HTTP basic client
-- authentication, for the token and introspection endpoints.
-- BENCH_PATH: request path. BENCH_BASIC: "client_id:client_secret", already form-encoded.
-- BENCH_FORM: the body, for example "grant_type=client_credentials".
-- BENCH_DELAY_MS: as in verify.lua.
local function required(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set")
  end
  return value
end

-- Base64 encoder, because wrk's Lua has no library for it.
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(text)
  return ((text:gsub(".", function(c)
    local bits, byte = "", c:byte()
    for i = 8, 1, -1 do
      bits = bits .. (byte % 2 ^ i - byte % 2 ^ (i - 1) > 0 and "1" or "0")
    end
    return bits
  end) .. "0000"):gsub("%d%d%d?%d?%d?%d?", function(group)
    if #group < 6 then
      return ""
    end
    local index = 0
    for i = 1, 6 do
      index = index + (group:sub(i, i) == "1" and 2 ^ (6 - i) or 0)
    end
    return alphabet:sub(index + 1, index + 1)
  end) .. ({ "", "==", "=" })[#text % 3 + 1])
end

wrk.method = "POST"
wrk.path = required("BENCH_PATH")
wrk.body = required("BENCH_FORM")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "Basic " .. base64(required("BENCH_BASIC"))

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

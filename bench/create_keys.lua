-- wrk script: creates native API keys through the admin API, POST /v1/tenants/{id}/api-keys,
-- and appends each returned key to MEMORY_KEY_DIR/native-<thread>.txt. Each thread stops
-- sending once it has stored MEMORY_KEYS_PER_THREAD keys, so requests still in flight may
-- create a few keys more than stored. wrk itself runs until its duration ends or it gets
-- SIGINT.
-- Environment: MEMORY_ADMIN_KEY, MEMORY_TENANT, MEMORY_KEYS_PER_THREAD, MEMORY_KEY_DIR.
local function required(name)
  local value = os.getenv(name)
  if value == nil or value == "" then
    error(name .. " is not set")
  end
  return value
end

local admin_key = required("MEMORY_ADMIN_KEY")
local tenant = required("MEMORY_TENANT")
local per_thread = tonumber(required("MEMORY_KEYS_PER_THREAD"))
local key_dir = required("MEMORY_KEY_DIR")

wrk.method = "POST"
wrk.path = "/v1/tenants/" .. tenant .. "/api-keys"
wrk.body = '{"role":"reader","mode":"live"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. admin_key

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("number", next_thread)
  table.insert(threads, thread)
end

function init(args)
  stored = 0
  failed = 0
  output = assert(io.open(key_dir .. "/native-" .. number .. ".txt", "w"))
end

function response(status, headers, body)
  if status ~= 201 then
    failed = failed + 1
    return
  end
  if stored >= per_thread then
    return
  end
  local key = body:match('"key"%s*:%s*"([^"]+)"')
  if key == nil then
    failed = failed + 1
    return
  end
  output:write(key, "\n")
  output:flush()
  stored = stored + 1
  if stored >= per_thread then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local total_stored, total_failed = 0, 0
  for _, thread in ipairs(threads) do
    total_stored = total_stored + thread:get("stored")
    total_failed = total_failed + thread:get("failed")
  end
  io.write(string.format("created keys stored: %d, failed requests: %d\n", total_stored, total_failed))
end

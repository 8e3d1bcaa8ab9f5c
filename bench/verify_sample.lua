-- wrk script: POST /v1/verify, cycling through the credentials in the file MEMORY_SAMPLE_FILE
-- (one a line), each thread from its own starting point. done() prints the number of responses
-- other than 200, which must be 0 for the run to count.
local sample_file = os.getenv("MEMORY_SAMPLE_FILE")
if sample_file == nil or sample_file == "" then
  error("MEMORY_SAMPLE_FILE is not set")
end

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("number", next_thread)
  table.insert(threads, thread)
end

function init(args)
  credentials = {}
  for line in io.lines(sample_file) do
    if line ~= "" then
      table.insert(credentials, line)
    end
  end
  if #credentials == 0 then
    error(sample_file .. " contains no credentials")
  end
  position = (number * 7919) % #credentials
  not_ok = 0
end

function request()
  position = position % #credentials + 1
  return wrk.format("POST", "/v1/verify", { ["Authorization"] = "Bearer " .. credentials[position] }, "")
end

function response(status, headers, body)
  if status ~= 200 then
    not_ok = not_ok + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("not_ok")
  end
  io.write(string.format("responses other than 200: %d\n", total))
end

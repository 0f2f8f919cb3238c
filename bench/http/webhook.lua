-- Copied unchanged (apart from this header) from shared/anchors/express-original/scripts/webhook.lua,
-- so that the anchor and sunusav-server get byte-identical load. Pairs file format: gen_pairs.py.
--
-- wrk script: POST /webhook/lightning with precomputed (signature, body) pairs.
-- Usage: wrk ... -s scripts/webhook.lua http://127.0.0.1:PORT/webhook/lightning \
--          -- <pairs file> <valid|invalid> <number of wrk threads (-t)>
-- Pairs file lines: "<hex sig>\t<json body>" (see gen-pairs.js).
-- valid:   x-sunu-signature: sha256=<correct hex>
-- invalid: x-sunu-signature: sha256=<64 zeros>  (same length, so the server
--          computes the HMAC and runs timingSafeEqual; it must answer 401)
-- Thread k of n sends lines k, k+n, k+2n, ... so threads never share a body;
-- a thread that runs past its slice starts it again and counts "repeats".
-- All request strings are built in init(), so request() only indexes a table.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local reqs, n, i = {}, 0, 0
sent, repeats, slice = 0, 0, 0

function init(args)
  local file, mode, nthreads = args[1], args[2] or "valid", tonumber(args[3] or "1")
  assert(file, "pairs file argument missing (after --)")
  assert(mode == "valid" or mode == "invalid", "mode must be valid or invalid")
  local bad = "sha256=" .. string.rep("0", 64)
  local f = assert(io.open(file, "r"))
  local line_no = 0
  for line in f:lines() do
    if line_no % nthreads == id then
      local sig, body = line:match("^(%x+)\t(.+)$")
      assert(sig, "bad line " .. line_no)
      local header = (mode == "valid") and ("sha256=" .. sig) or bad
      n = n + 1
      reqs[n] = wrk.format("POST", nil,
        { ["Content-Type"] = "application/json", ["x-sunu-signature"] = header },
        body)
    end
    line_no = line_no + 1
  end
  f:close()
  assert(n > 0, "no lines for thread " .. id)
  slice = n
end

function request()
  i = i + 1
  if i > n then
    i = 1
  end
  sent = sent + 1
  if sent > n then
    repeats = repeats + 1
  end
  return reqs[i]
end

function done(summary, latency, requests)
  local total_sent, total_repeats, total_slice = 0, 0, 0
  for _, t in ipairs(threads) do
    total_sent = total_sent + t:get("sent")
    total_repeats = total_repeats + t:get("repeats")
    total_slice = total_slice + t:get("slice")
  end
  io.write(string.format("bodies: loaded=%d built_requests=%d repeated_bodies=%d\n",
    total_slice, total_sent, total_repeats))
end

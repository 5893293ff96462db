-- complete: ARGV[11] grant id, ARGV[12] consumed, ARGV[13] tokens_left or '',
-- ARGV[14] report timestamp (ms) or ''.
-- Reply: {tokens, report_applied, report_stale}
local id = ARGV[11]
local consumed = tonumber(ARGV[12])
local tokens_left = opt_arg(ARGV[13])
local ts = opt_arg(ARGV[14])

local s, err = load()
if err then
  return redis.error_reply(err)
end
if not s then
  return no_grant(id)
end
refill(s)
expire(s)
local est = lease(s, id)
if not est then
  return no_grant(id)
end
end_lease(s, id, est)

local applied, stale = 0, 0
if tokens_left then
  if s.report_ts and ts < s.report_ts then
    stale = 1
  else
    applied = 1
  end
end
if applied == 1 then
  -- The API's balance already includes this call; the others still in
  -- flight will be charged later.
  s.tokens = tokens_left - s.inflight_tokens
  s.report_ts = ts
else
  s.tokens = s.tokens - (consumed - est)
end
persist(s)
return {s.tokens, applied, stale}

-- complete: the call of grant `id` was made and cost `consumed`; with a
-- report (the API's tokens_left at report_ms; both '' when none) that is
-- not stale (stale_report in the prelude), the report sets the balance.
-- @keys pool
-- @policy
-- @call complete(id, consumed, tokens_left, report_ms)
--   -> {tokens, report_applied, report_stale}
local id = op[1]
local consumed, bad = arg_int(op[2], 'consumed', 0, LIMIT)
local tokens_left, ts
if not bad then
  tokens_left, bad = arg_opt(op[3], 'tokens_left', -LIMIT, LIMIT)
end
if not bad then
  ts, bad = arg_opt(op[4], 'report_ms', 0, LIMIT)
end
if not bad and (tokens_left == nil) ~= (ts == nil) then
  bad = redis.error_reply('TKMARG tokens_left and report_ms go together ' ..
                          '(nothing was changed)')
end
bad = bad or preflight({B, L, E}, WRITE_LEASES)
if bad then
  return bad
end

local s, est = take_lease(id)
if not s then
  return est -- the error reply
end
learn(s, est, consumed)

local applied, stale = 0, 0
if tokens_left then
  if stale_report(s, ts, tokens_left - s.inflight_tokens,
                  s.tokens - (consumed - est)) then
    stale = 1
  else
    applied = 1
  end
end
if applied == 1 then
  -- The API's balance already includes this call; the others still in
  -- flight will be charged later.
  s.tokens = report_as_of(s, tokens_left, ts) - s.inflight_tokens
  s.report_ts = ts
else
  s.tokens = s.tokens - (consumed - est)
end
bad = persist(s)
if bad then
  return bad
end
drop_ended(s)
return {s.tokens, applied, stale}

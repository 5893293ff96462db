-- sync: the API's balance (`tokens`, `rate` per period, refill_in_ms or ''
-- when unknown) as of report_ms ('': Redis' now, an operator's word, never
-- stale); a stale report (stale_report in the prelude) leaves the balance
-- alone.
-- @keys pool
-- @policy
-- @call sync(tokens, rate, refill_in_ms, report_ms)
--   -> {tokens, report_applied, report_stale}
local tokens, bad = arg_int(op[1], 'tokens', -LIMIT, LIMIT)
local rate, rin, ts
if not bad then
  rate, bad = arg_int(op[2], 'rate', 0, LIMIT)
end
if not bad then
  rin, bad = arg_opt(op[3], 'refill_in_ms', 0, cfg.period_ms)
end
if not bad then
  ts, bad = arg_opt(op[4], 'report_ms', 0, LIMIT)
end
bad = bad or preflight({B, L, E}, WRITE_LEASES)
if bad then
  return bad
end
local reported = ts ~= nil
ts = ts or now

local s, err = load()
if err then
  return redis.error_reply(err)
end
if s then
  refill(s)
  expire(s)
  if stale_report(s, ts, reported and tokens - s.inflight_tokens, s.tokens) then
    return {s.tokens, 0, 1}
  end
else
  -- A pool without state may still have leases (its hash deleted by hand):
  -- they are counted from the leases, and expire() takes the expired ones
  -- out again.
  s = {win = {['*'] = parse_window(redis.call('HGET', B, 'learn:*'))},
       dirty = {}, seq = int_or_nil(redis.call('HGET', B, 'seq'))}
  rebuild(s)
  expire(s)
end

s.rate = rate
s.period_ms = cfg.period_ms
s.phase_ms = nil -- the API's phase only with the API's timestamp (below)
if rin and reported and math.abs(now - ts) < cfg.period_ms then
  -- The API's next tick is at ts + refillIn, on the API's clock; the
  -- pool's, tick_guard after it (now + refillIn would be late by the
  -- response's latency, unknown to report_as_of in the prelude, which
  -- keeps later reports on the schedule).
  s.anchor_ms = ts + rin - cfg.period_ms + tick_guard(cfg.period_ms)
  s.phase_ms = ts
elseif rin then
  s.anchor_ms = now + rin - cfg.period_ms -- the next tick is at now + refillIn
else
  s.anchor_ms = now
end
-- Reservations still in flight are not in the API's balance yet.
s.tokens = tokens - s.inflight_tokens
s.report_ts = ts
s.sync_ms = now
bad = persist(s)
if bad then
  return bad
end
if s.reground_ms then -- the API's balance grounds it after a new master
  redis.call('HDEL', B, 'reground_ms')
end
if not s.phase_ms then -- a phase not the API's (report_as_of)
  redis.call('HDEL', B, 'phase_ms')
end
return {s.tokens, 1, 0}

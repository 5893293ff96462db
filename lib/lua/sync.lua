-- sync: the API's balance (`tokens`, `rate` per period, refill_in_ms or ''
-- when unknown) as of report_ms ('': Redis' now); a stale report
-- (stale_report in the prelude) leaves the balance alone.
-- @keys pool
-- @policy
-- @call sync(tokens, rate, refill_in_ms, report_ms)
--   -> {tokens, report_applied, report_stale}
local tokens = tonumber(op[1])
local rate = tonumber(op[2])
local rin = opt_arg(op[3])
local ts = opt_arg(op[4]) or now

local s, err = load()
if err then
  return redis.error_reply(err)
end
if s then
  refill(s)
  expire(s)
  if stale_report(s, ts) then
    return {s.tokens, 0, 1}
  end
else
  -- A pool without state may still have leases (its hash deleted by hand):
  -- expire() subtracted the expired ones, the sum below adds all of them.
  -- Their reserve is counted afresh (stale counts dropped first).
  s = {inflight_tokens = 0, reserve_mt = 0, unlearned_tokens = 0,
       ratios = {}, n = {}, dirty = {},
       ['ratio:*'] = int_or_nil(redis.call('HGET', B, 'ratio:*'))}
  for _, f in ipairs(redis.call('HKEYS', B)) do
    if string.sub(f, 1, 2) == 'n:' then
      redis.call('HDEL', B, f)
    end
  end
  expire(s)
  local live = redis.call('HVALS', L)
  for _, v in ipairs(live) do
    local est = int_or_nil(string.match(v, '^([^|]*)')) or 0
    s.inflight_tokens = s.inflight_tokens + est
    hold(s, est, 1)
  end
end

s.rate = rate
s.period_ms = cfg.period_ms
if rin then
  s.anchor_ms = now + rin - cfg.period_ms -- the next tick is at now + refillIn
else
  s.anchor_ms = now
end
-- Reservations still in flight are not in the API's balance yet.
s.tokens = tokens - s.inflight_tokens
s.report_ts = ts
s.sync_ms = now
persist(s)
return {s.tokens, 1, 0}

#!lua flags=no-writes
-- status (read-only, flagged so: it runs under CLIENT PAUSE WRITE and on
-- replicas): the pool with refill projected to now, its workers' summary
-- and its line.  estimate_ratio is in thousandths (0: nothing learned
-- yet); a pool without state answers synced 0, its bucket fields 0 or -1
-- (period_ms: the configured one).  inflight and inflight_tokens are
-- counted from the leases when the counters kept beside them disagree.
-- The rows are the line per class: 'default' first (always), then every
-- class holding a ticket, by name (at most 64): the present waiters, their
-- tokens, the oldest one's wait so far (-1: none) and the absent waiters
-- (late past the grace, kept until their tickets expire).
-- @keys pool
-- @policy
-- @call status()
--   -> {synced, tokens, capacity, rate, period_ms, refill_in_ms,
--       recharge_mode, recharge_since_ms, recharge_target, inflight,
--       inflight_tokens, last_sync_age_ms, now, workers_total, workers_alive,
--       heartbeat_age_ms, inflight_reserve, estimate_ratio}
--      {class, waiters, tokens, oldest_wait_ms, absent}...
local bad = preflight({B, L, E, H, U, Q})
if bad then
  return bad
end
local s, err = load()
if err then
  return redis.error_reply(err)
end
local total, alive, hb_age = worker_summary()

local rows = {}
do
  local by = line_summary(load_line())
  local names = {}
  for name in pairs(by) do
    if name ~= 'default' then
      names[#names + 1] = name
    end
  end
  table.sort(names)
  table.insert(names, 1, 'default')
  for i = 1, math.min(#names, 64) do
    local c = by[names[i]] or {waiters = 0, tokens = 0, oldest = -1, absent = 0}
    for _, v in ipairs({names[i], c.waiters, c.tokens, c.oldest, c.absent}) do
      rows[#rows + 1] = v
    end
  end
end
local function reply(fields)
  for _, v in ipairs(rows) do
    fields[#fields + 1] = v
  end
  return fields
end

if not s then
  return reply({0, 0, 0, 0, cfg.period_ms, -1, 0, -1, 0, 0, 0, -1, now, total,
                alive, hb_age, 0, 0})
end
refill(s)
expire(s)
local cap = capacity(s)
-- What the next decision would see: recharge timed out, or the balance at
-- its target (any call then ends it), is off, though only a decision
-- writes that down.
if recharge_timed_out(s) or
   (recharge_on(s) and s.tokens >= math.min(cfg.recharge_target, cap)) then
  s.recharge_since_ms = nil
end
local age = -1
if s.sync_ms then
  age = now - s.sync_ms
end
return reply({1, s.tokens, cap, s.rate, s.period_ms, refill_in(s),
              recharge_on(s) and 1 or 0, s.recharge_since_ms or -1,
              math.min(cfg.recharge_target, cap), s.leases, s.inflight_tokens,
              age, now, total, alive, hb_age, reserve(s),
              learned(s, s.win['*']) or 0})

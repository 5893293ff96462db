-- Shared by the tokenmgr scripts that take the pool's keys and the policy
-- (those declaring `@policy`; cmake/embed_lua.cmake prepends it and says
-- how a script declares its keys, arguments and reply): reading the pool's
-- state, the refill schedule, lease expiry and persistence.  The bucket
-- policy lives here and in the per-operation scripts, nowhere else.
--
-- The `pool` key set: KEYS[1] bucket hash (the fields in FIELDS, 'seq', and the estimate
-- errors: 'ratio:<estimate>', 'n:<estimate>'), KEYS[2] leases hash
-- (id -> "estimate|worker"),
-- KEYS[3] lease expiry sorted set (id -> expiry, Unix ms on Redis' clock),
-- KEYS[4] heartbeats sorted set (worker id -> last heartbeat, Unix ms),
-- KEYS[5] workers hash (worker id -> "busy_until_ms|phase"),
-- KEYS[6] the /token throttle (string, expires when a sync is allowed),
-- KEYS[7] busy workers (sorted set: worker id -> busy_until_ms, only while
-- the worker's latest heartbeat declared a busy period).
-- ARGV[1..12] the policy (`@policy`): capacity (0 = 60 x rate), min_start_balance,
-- soft_floor, recharge_target, low_cost_max, low_cost_target,
-- recharge_timeout_ms, max_deficit, lease_ttl_ms, refill_period_ms,
-- stale_after_ms, retention_ms.  ARGV[13..] belong to the operation: op[].
local B, L, E, H, W, S, U = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6],
                            KEYS[7]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local cfg = {
  capacity = tonumber(ARGV[1]),
  min_start = tonumber(ARGV[2]),
  soft_floor = tonumber(ARGV[3]),
  recharge_target = tonumber(ARGV[4]),
  low_cost_max = tonumber(ARGV[5]),
  low_cost_target = tonumber(ARGV[6]),
  recharge_timeout_ms = tonumber(ARGV[7]),
  max_deficit = tonumber(ARGV[8]),
  lease_ttl_ms = tonumber(ARGV[9]),
  period_ms = tonumber(ARGV[10]),
  stale_after_ms = tonumber(ARGV[11]),
  retention_ms = tonumber(ARGV[12]),
}
local op = {}
for i = 13, #ARGV do
  op[i - 12] = ARGV[i]
end

-- An integer as this library writes it: optional minus and digits, at most
-- 17 characters.
local function int_or_nil(v)
  if type(v) ~= 'string' or not string.match(v, '^%-?%d+$') or #v > 17 then
    return nil
  end
  return tonumber(v)
end

local FIELDS = {'tokens', 'rate', 'period_ms', 'anchor_ms', 'report_ts',
                'sync_ms', 'recharge_since_ms', 'inflight_tokens',
                'reserve_mt', 'unlearned_tokens', 'ratio:*'}
local REQUIRED = {tokens = true, rate = true, period_ms = true, anchor_ms = true}

-- Estimate errors.  Each completion teaches the pool how far its estimates
-- fall short: a ratio in thousandths of actual / estimate (>= 1000), one per
-- estimate value ('ratio:<estimate>') and one for the pool ('ratio:*', for
-- estimates never completed yet).  A ratio is a slowly decaying maximum: it
-- rises at once to a larger error and moves 1/64 of the way toward a
-- smaller one per completion, so it follows the worst recent error.  Before
-- the pool has learned anything a call is valued at RATIO_PRIOR: 4 times
-- its estimate (SEED's recorded error, 386 charged for 100, rounded up).
--
-- The calls in flight hold a reserve, the sum over them of
-- estimate x (ratio - 1) at the ratios known now ('reserve_mt', thousandths
-- of a token, exact), revalued whenever a ratio changes: 'n:<estimate>'
-- counts them per estimate, and 'unlearned_tokens' sums the estimates that
-- have no ratio of their own.  The deficit limit holds for that reserve.
-- Two fields per estimate value ever used: callers use a handful.
local RATIO_ONE, RATIO_PRIOR = 1000, 4000

-- The ratio (false: none) and in-flight count of estimate c, from the
-- values read (HMGET 'ratio:<c>', 'n:<c>').
local function set_class(s, c, ratio, count)
  s.ratios[c] = int_or_nil(ratio) or false
  s.n[c] = int_or_nil(count) or 0
end

-- Returns state, nil; or nil, nil (no state); or nil, error text.  The
-- estimate values in `classes` (optional) are read in the same HMGET.
local function load(classes)
  classes = classes or {}
  local names = {unpack(FIELDS)}
  for _, c in ipairs(classes) do
    names[#names + 1] = 'ratio:' .. c
    names[#names + 1] = 'n:' .. c
  end
  local raw = redis.call('HMGET', B, unpack(names))
  if not raw[1] then
    return nil, nil
  end
  local s = {}
  for i, name in ipairs(FIELDS) do
    local v = raw[i]
    if v then
      local n = int_or_nil(v)
      if n == nil then
        return nil, "TKMSTATE field '" .. name .. "' of " .. B ..
                    " holds '" .. string.sub(v, 1, 40) ..
                    "', not an integer (nothing was changed; `tokenmgr reset` starts the pool over)"
      end
      s[name] = n
    elseif REQUIRED[name] then
      return nil, "TKMSTATE field '" .. name .. "' of " .. B .. ' is missing'
    end
  end
  if s.rate < 0 or s.period_ms <= 0 then
    return nil, 'TKMSTATE ' .. B .. ' holds an impossible rate ' .. s.rate ..
                ' or period ' .. s.period_ms
  end
  s.inflight_tokens = s.inflight_tokens or 0
  s.reserve_mt = s.reserve_mt or 0
  s.unlearned_tokens = s.unlearned_tokens or 0
  s.ratios, s.n, s.dirty = {}, {}, {}
  for i, c in ipairs(classes) do
    set_class(s, c, raw[#FIELDS + 2 * i - 1], raw[#FIELDS + 2 * i])
  end
  return s, nil
end

-- The learned ratio of estimate c, or nil (read when not loaded yet).
local function class_ratio(s, c)
  if s.ratios[c] == nil then
    local v = redis.call('HMGET', B, 'ratio:' .. c, 'n:' .. c)
    set_class(s, c, v[1], v[2])
  end
  return s.ratios[c] or nil
end

local function ratio_of(s, c)
  return class_ratio(s, c) or s['ratio:*'] or RATIO_PRIOR
end

-- A reservation estimated at c starts (d = 1) or stops (d = -1) being in
-- flight.
local function hold(s, c, d)
  s.reserve_mt = s.reserve_mt + d * c * (ratio_of(s, c) - RATIO_ONE)
  if not class_ratio(s, c) then
    s.unlearned_tokens = s.unlearned_tokens + d * c
  end
  s.n[c] = math.max(0, s.n[c] + d)
  s.dirty[c] = true
end

-- The reserve in whole tokens (never negative).
local function reserve(s)
  return math.max(0, math.ceil(s.reserve_mt / RATIO_ONE))
end

local function decayed_max(old, seen)
  if old == nil or seen >= old then
    return seen
  end
  return old - math.floor((old - seen) / 64)
end

-- complete: a call estimated at c cost `consumed` (its lease ended first).
local function learn(s, c, consumed)
  if c <= 0 or consumed < 0 then
    return
  end
  local seen = math.max(RATIO_ONE, math.min(1000 * RATIO_ONE,
                                            math.ceil(consumed * RATIO_ONE / c)))
  local learned = class_ratio(s, c)
  local before = ratio_of(s, c)
  local n = s.n[c]
  local rc = decayed_max(learned, seen)
  if not learned then
    s.unlearned_tokens = s.unlearned_tokens - n * c
  end
  s.reserve_mt = s.reserve_mt + n * c * (rc - before)
  s.ratios[c] = rc
  s.dirty[c] = true
  local rp = decayed_max(s['ratio:*'], seen)
  s.reserve_mt = s.reserve_mt + s.unlearned_tokens * (rp - (s['ratio:*'] or RATIO_PRIOR))
  s['ratio:*'] = rp
end

local function capacity(s)
  if cfg.capacity > 0 then
    return cfg.capacity
  end
  return 60 * s.rate
end

-- Keepa's discrete refill: one tick of `rate` tokens per period, aligned to
-- anchor_ms (the last tick applied), never above capacity through refill.
local function refill(s)
  local n = math.floor((now - s.anchor_ms) / s.period_ms)
  if n > 0 then
    local cap = capacity(s)
    if s.tokens < cap then
      s.tokens = math.min(cap, s.tokens + n * s.rate)
    end
    s.anchor_ms = s.anchor_ms + n * s.period_ms
  end
end

local function refill_in(s)
  local r = s.anchor_ms + s.period_ms - now
  if r < 1 then r = 1 end
  if r > s.period_ms then r = s.period_ms end
  return r
end

-- Milliseconds until refill brings the balance to `needed`; -1 never.
local function wait_for(s, needed)
  if s.tokens >= needed then
    return 0
  end
  if s.rate <= 0 or needed > math.max(capacity(s), s.tokens) then
    return -1
  end
  local ticks = math.ceil((needed - s.tokens) / s.rate)
  return s.anchor_ms + ticks * s.period_ms - now
end

-- Leases past their expiry keep their cost but are no longer in flight.
-- Computed in memory; persist() removes them when the script writes.
local function expire(s)
  s.expired = redis.call('ZRANGEBYSCORE', E, '-inf', now, 'LIMIT', 0, 1000)
  s.is_expired = {}
  if #s.expired > 0 then
    local vals = redis.call('HMGET', L, unpack(s.expired))
    for i, id in ipairs(s.expired) do
      s.is_expired[id] = true
      if vals[i] then
        local est = int_or_nil(string.match(vals[i], '^([^|]*)'))
        if est then
          s.inflight_tokens = s.inflight_tokens - est
          hold(s, est, -1)
        end
      end
    end
  end
end

local function recharge_on(s)
  return s.recharge_since_ms ~= nil
end

-- Recharge older than its timeout is over (the livelock guard).
local function recharge_timed_out(s)
  return recharge_on(s) and now - s.recharge_since_ms >= cfg.recharge_timeout_ms
end

local function persist(s)
  if s.inflight_tokens <= 0 then
    -- Nothing (or only free calls) in flight: no reserve, whatever drifted.
    s.reserve_mt, s.unlearned_tokens = 0, 0
  end
  local f = {'tokens', s.tokens, 'rate', s.rate, 'period_ms', s.period_ms,
             'anchor_ms', s.anchor_ms, 'inflight_tokens', s.inflight_tokens,
             'reserve_mt', s.reserve_mt, 'unlearned_tokens', s.unlearned_tokens}
  if s['ratio:*'] then
    f[#f + 1], f[#f + 2] = 'ratio:*', s['ratio:*']
  end
  for c in pairs(s.dirty) do
    f[#f + 1], f[#f + 2] = 'n:' .. c, s.n[c]
    if s.ratios[c] then
      f[#f + 1], f[#f + 2] = 'ratio:' .. c, s.ratios[c]
    end
  end
  redis.call('HSET', B, unpack(f))
  if s.report_ts then redis.call('HSET', B, 'report_ts', s.report_ts) end
  if s.sync_ms then redis.call('HSET', B, 'sync_ms', s.sync_ms) end
  if s.recharge_since_ms then
    redis.call('HSET', B, 'recharge_since_ms', s.recharge_since_ms)
  else
    redis.call('HDEL', B, 'recharge_since_ms')
  end
  if s.expired and #s.expired > 0 then
    redis.call('HDEL', L, unpack(s.expired))
    redis.call('ZREM', E, unpack(s.expired))
  end
end

local function end_lease(s, id, est)
  redis.call('HDEL', L, id)
  redis.call('ZREM', E, id)
  s.inflight_tokens = s.inflight_tokens - est
  hold(s, est, -1)
end

local function no_grant(id)
  return redis.error_reply('TKMNOGRANT no reservation ' .. id .. ' in pool ' ..
                           string.match(B, '{(.-)}') ..
                           ' (never granted, already ended or expired)')
end

-- complete and release: the pool's state with the live lease `id` ended.
-- Returns s, est; or nil, an error reply.
local function take_lease(id)
  local v = redis.call('HGET', L, id)
  local est = v and int_or_nil(string.match(v, '^([^|]*)'))
  local s, err = load(est and {est})
  if err then
    return nil, redis.error_reply(err)
  end
  if not s or not est then
    return nil, no_grant(id)
  end
  refill(s)
  expire(s)
  if s.is_expired[id] then
    return nil, no_grant(id)
  end
  end_lease(s, id, est)
  return s, est
end

-- A report older than the last one applied lost a race with it: ignore it
-- for the balance.  Older by more than a lease can live is no race but the
-- API's clock moving back (or a skewed report before): accept it, or one bad
-- timestamp would freeze the balance (SEED failure 6).
local function stale_report(s, ts)
  return s.report_ts ~= nil and ts < s.report_ts and
         s.report_ts - ts <= cfg.lease_ttl_ms
end

-- An optional integer argument: '' means absent.
local function opt_arg(v)
  if v == nil or v == '' then
    return nil
  end
  return tonumber(v)
end


-- Workers on Redis' clock: how many heartbeats within the retention, how
-- many alive (a heartbeat no older than stale_after_ms, or inside a declared
-- busy period), and the age of the freshest heartbeat (-1 when none).
local function busy_until(info)
  if not info then
    return 0
  end
  return int_or_nil(string.match(info, '^([^|]*)')) or 0
end

-- A worker's record "busy_until_ms|error_ms:error|phase" (or the older
-- "busy_until_ms|phase"): busy_until_ms, the error field, the phase.
local function worker_record(info)
  if not info then
    return 0, '', ''
  end
  local b, err, phase = string.match(info, '^([^|]*)|(%d*:?[a-z]*)|(.*)$')
  if not b then
    b, phase = string.match(info, '^([^|]*)|(.*)$')
    err = ''
  end
  return int_or_nil(b) or 0, err or '', phase or ''
end

local function worker_summary()
  local horizon = now - cfg.retention_ms
  local stale_before = now - cfg.stale_after_ms
  local total = redis.call('ZCOUNT', H, '(' .. horizon, '+inf')
  local alive = redis.call('ZCOUNT', H, stale_before, '+inf')
  -- Plus the workers inside a busy period whose heartbeat is stale: only
  -- the busy ones are looked at, never the departed (O(busy x log n)).
  local busy = redis.call('ZRANGEBYSCORE', U, '(' .. now, '+inf', 'LIMIT', 0, 1000)
  for _, id in ipairs(busy) do
    local hb = redis.call('ZSCORE', H, id)
    if hb and tonumber(hb) < stale_before and tonumber(hb) > horizon then
      alive = alive + 1
    end
  end
  local age = -1
  local top = redis.call('ZREVRANGE', H, 0, 0, 'WITHSCORES')
  if #top > 0 then
    age = math.max(0, now - tonumber(top[2]))
  end
  return total, alive, age
end

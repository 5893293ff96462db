-- Shared by the tokenmgr scripts that take the pool's keys and the policy
-- (those declaring `@policy`; cmake/embed_lua.cmake prepends it and says
-- how a script declares its keys, arguments and reply): reading the pool's
-- state, the refill schedule, lease expiry and persistence.  The bucket
-- policy lives here and in the per-operation scripts, nowhere else.
--
-- The `pool` key set: KEYS[1] bucket hash (the fields in FIELDS and
-- TEXT_FIELDS, and 'learn:<class>' per estimate class: see learn()),
-- KEYS[2] leases hash (id -> "estimate|worker"),
-- KEYS[3] lease expiry sorted set (id -> expiry, Unix ms on Redis' clock),
-- KEYS[4] heartbeats sorted set (worker id -> last heartbeat, Unix ms),
-- KEYS[5] workers hash (worker id -> "busy_until_ms|phase"),
-- KEYS[6] the /token throttle (string, expires when a sync is allowed),
-- KEYS[7] busy workers (sorted set: worker id -> busy_until_ms, only while
-- the worker's latest heartbeat declared a busy period),
-- KEYS[8] the wait queue (hash: the tickets of the line and its virtual
-- clock; see "the line" below; absent while nobody waits).
-- ARGV[1..13] the policy (`@policy`): capacity (0 = 60 x rate), min_start_balance,
-- soft_floor, recharge_target, low_cost_max, low_cost_target,
-- recharge_timeout_ms, max_deficit, lease_ttl_ms, refill_period_ms,
-- stale_after_ms, retention_ms, estimate_prior (thousandths).  ARGV[14..]
-- belong to the operation: op[].
--
-- A script that fails part way keeps the writes it made (Redis has no
-- rollback), so every script that writes first calls preflight() for the
-- keys it touches and the commands it may send, and writes only once
-- nothing can fail any more: persist() checks every value before its first
-- write.
local B, L, E, H, W, S, U, Q = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5],
                               KEYS[6], KEYS[7], KEYS[8]

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
  estimate_prior = tonumber(ARGV[13]),
}
local op = {}
for i = 14, #ARGV do
  op[i - 13] = ARGV[i]
end

-- The numbers the state holds: integers of at most 16 digits, which Lua's
-- doubles carry exactly and Redis writes back as digits.  Every argument
-- and every value written stays within it.
local LIMIT = 1e15

local function fmt(v)
  return string.format('%d', v)
end

-- An integer as this library writes it: optional minus and digits, within
-- LIMIT.
local function int_or_nil(v)
  if type(v) ~= 'string' or not string.match(v, '^%-?%d+$') or #v > 17 then
    return nil
  end
  local n = tonumber(v)
  if n < -LIMIT or n > LIMIT then
    return nil
  end
  return n + 0 -- '-0' is 0: Redis reads no "-0" as an integer
end

-- An operation's integer argument within lo..hi, or nil and the refusal.
local function arg_int(v, name, lo, hi)
  local n = int_or_nil(v)
  if n == nil or n < lo or n > hi then
    return nil, redis.error_reply('TKMARG ' .. name .. " '" ..
                                  string.sub(tostring(v), 1, 40) ..
                                  "' is not an integer in " .. fmt(lo) ..
                                  '..' .. fmt(hi) .. ' (nothing was changed)')
  end
  return n
end

-- The same, '' meaning absent (nil, no error).
local function arg_opt(v, name, lo, hi)
  if v == nil or v == '' then
    return nil
  end
  return arg_int(v, name, lo, hi)
end

-- A class of the line ([A-Za-z0-9_.-]{1,32}), or nil and the refusal.
local function arg_class(v)
  if #v <= 32 and string.match(v, '^[%w_.%-]+$') then
    return v
  end
  return nil, redis.error_reply("TKMARG class '" .. string.sub(v, 1, 40) ..
                                "' is not [A-Za-z0-9_.-]{1,32} (nothing " ..
                                'was changed)')
end

-- A call's place in line as its arguments give it: its class, that class's
-- weight and how long it may wait (with `try_ok`, '' is a try: nil), or
-- nil and the refusal.
local function arg_place(class, weight, max_wait, try_ok)
  local mw
  local w, bad = arg_int(weight, 'weight', 1, 1000)
  if not bad then
    mw, bad = (try_ok and arg_opt or arg_int)(max_wait, 'max_wait_ms', 0,
                                              86400000)
  end
  if not bad then
    class, bad = arg_class(class)
  end
  return class, w, mw, bad
end

-- ---- before the first write ------------------------------------------

local KEY_TYPES = {[B] = 'hash', [L] = 'hash', [E] = 'zset', [H] = 'zset',
                   [W] = 'hash', [S] = 'string', [U] = 'zset', [Q] = 'hash'}
if KEYS[12] then -- the recovery guard's keys (recovery.lua)
  KEY_TYPES[KEYS[9]], KEY_TYPES[KEYS[10]] = 'hash', 'zset'
  KEY_TYPES[KEYS[11]], KEY_TYPES[KEYS[12]] = 'string', 'stream'
end

-- The write commands a script may send, as redis.acl_check_cmd takes them.
local WRITE_BUCKET = {{'HSET', B, 'f', 'v'}, {'HDEL', B, 'f'}}
local WRITE_LEASES = {{'HSET', B, 'f', 'v'}, {'HDEL', B, 'f'},
                      {'HDEL', L, 'f'}, {'ZADD', E, '0', 'm'},
                      {'ZREM', E, 'm'}}
local WRITE_LINE = {{'HSET', Q, 'f', 'v'}, {'HDEL', Q, 'f'}, {'DEL', Q}}

-- Reads that fail on a key of another type (WRONGTYPE), one per type:
-- commands every tokenmgr user may already run (conf/redis-acl.conf).
local PROBES = {hash = {'HGET', 'f'}, zset = {'ZCARD'}, string = {'GET'},
                stream = {'XREVRANGE', '+', '-', 'COUNT', '1'}}

-- Each of `keys` holds its type or nothing, and the connection's user may
-- run each of `writes` (a list of {command, key, args...}): checked before
-- the first write, so that a script refused here changed nothing.  Returns
-- nil, or the error reply.
local function preflight(keys, writes)
  for _, k in ipairs(keys) do
    local p = PROBES[KEY_TYPES[k]]
    local r = redis.pcall(p[1], k, unpack(p, 2))
    if type(r) == 'table' and r.err then
      if string.find(r.err, 'WRONGTYPE', 1, true) then
        return redis.error_reply('TKMSTATE key ' .. k .. ' is not a ' ..
                                 KEY_TYPES[k] .. ': written by something ' ..
                                 'else (nothing was changed; `tokenmgr ' ..
                                 'reset` starts the pool over)')
      end
      return redis.error_reply(r.err)
    end
  end
  for _, w in ipairs(writes or {}) do
    if not redis.acl_check_cmd(unpack(w)) then
      return redis.error_reply('NOPERM this Redis user may not run ' .. w[1] ..
                               ' on ' .. w[2] .. ', which the call needs ' ..
                               '(checked before any write: nothing was changed)')
    end
  end
  return nil
end

-- ---- the state ----------------------------------------------------------

local FIELDS = {'tokens', 'rate', 'period_ms', 'anchor_ms', 'report_ts',
                'sync_ms', 'recharge_since_ms', 'inflight_tokens', 'leases',
                'seq', 'reground_ms', 'phase_ms'}
local TEXT_FIELDS = {'inflight_est', 'learn:*'}
local FIELDS_READ = {unpack(FIELDS)}
for _, f in ipairs(TEXT_FIELDS) do
  FIELDS_READ[#FIELDS_READ + 1] = f
end
local REQUIRED = {tokens = true, rate = true, period_ms = true, anchor_ms = true}

-- Estimate errors.  Each completion teaches the pool how far an estimate
-- fell short: a sample, the ratio actual / estimate in thousandths, at
-- least 1000 (over-estimates earn no credit) and at most RATIO_MAX.  The
-- samples are kept per estimate class (estimates c with lo <= c < 2 lo, lo
-- a power of two: 'learn:<lo>', so at most 50 fields whatever estimates
-- callers send) and for the pool ('learn:*', for classes never completed
-- yet): the last WINDOW samples, "ratio:time_ms,..." oldest first.
--
-- The learned ratio of a window is a high quantile of it, not its maximum:
-- its second largest sample, so that one outlier does not hold the pool
-- back, while two in the last WINDOW calls (an estimate short one time in
-- four) do.  The largest sample counts too, but only for HOLD_PERIODS
-- refill periods after it was seen: a call far above its estimate may be
-- the first of many, and a few periods tell.  A single sample, once its
-- hold is over, counts at most as the prior.  Before the pool has learned
-- anything a call is valued at the prior, bucket.estimate_prior (4: SEED's
-- recorded error, 386 charged for 100, rounded up).
--
-- The calls in flight hold a reserve: the sum over them of estimate x
-- (ratio - 1) at the ratios known now, computed at each decision from
-- 'inflight_est' (the estimates in flight per class, "lo:tokens,...") and
-- the windows.  The deficit limit holds for that reserve.
local RATIO_ONE, RATIO_MAX = 1000, 1000000
local WINDOW, HOLD_PERIODS = 8, 3
local PRIOR = math.min(RATIO_MAX, math.max(RATIO_ONE,
                                           math.floor(cfg.estimate_prior or 4000)))

-- The class of estimate c > 0: the power of two lo with lo <= c < 2 lo.
local function class_of(c)
  local lo = 1
  while lo * 2 <= c do
    lo = lo * 2
  end
  return lo
end

-- "est|worker" -> est, or nil for what this library did not write.
local function lease_est(v)
  local est = v and int_or_nil(string.match(v, '^([^|]*)|'))
  if est and est >= 0 then
    return est
  end
  return nil
end

-- A window's text -> {{r, t}...}; what does not parse is left out.
local function parse_window(v)
  local w = {}
  if type(v) == 'string' then
    for r, ts in string.gmatch(v, '(%d+):(%d+)') do
      r, ts = tonumber(r), tonumber(ts)
      if #w < WINDOW and r >= RATIO_ONE and r <= RATIO_MAX and ts <= LIMIT then
        w[#w + 1] = {r, ts}
      end
    end
  end
  return w
end

local function window_text(w)
  local parts = {}
  for i, e in ipairs(w) do
    parts[i] = fmt(e[1]) .. ':' .. fmt(e[2])
  end
  return table.concat(parts, ',')
end

local function add_class(s, est, d)
  if est > 0 then
    local lo = class_of(est)
    s.cls[lo] = (s.cls[lo] or 0) + d * est
  end
end

-- The longest lease any configuration gives (bucket.lease_ttl_s is at most
-- a day): an expiry later than that is no lease of ours.
local LEASE_MAX_MS = 86400000

-- Counters kept beside the leases (inflight_tokens, leases, inflight_est)
-- agree with them, and every lease expires within a lease's life: checked
-- at each load in O(log leases): the count of expiries, the oldest and the
-- newest lease (a leases hash deleted by hand shows at once; one lease
-- lost, when it is the oldest, and expire() checks each lease it ends).
local function consistent(s)
  local n = redis.call('ZCARD', E)
  if s.leases ~= n then
    return false
  end
  local sum = 0
  for _, v in pairs(s.cls) do
    if v < 0 then
      return false
    end
    sum = sum + v
  end
  if sum ~= s.inflight_tokens then
    return false
  end
  if n > 0 then
    local last = redis.call('ZREVRANGEBYSCORE', E, '+inf', '-inf', 'WITHSCORES',
                            'LIMIT', 0, 1)
    if tonumber(last[2]) > now + LEASE_MAX_MS then
      return false
    end
    local first = redis.call('ZRANGEBYSCORE', E, '-inf', '+inf', 'LIMIT', 0, 1)
    local v = redis.call('HMGET', L, last[1], first[1])
    if not lease_est(v[1]) or not lease_est(v[2]) then
      return false
    end
  end
  return true
end

-- They disagree (a script torn by an older version, a hand edit): the
-- counters again from the leases (O(leases), only then), and persist()
-- repairs the keys: leases that are not ours go, every lease expires
-- within its life, expiries without a lease go.
local function rebuild(s)
  s.inflight_tokens, s.leases, s.cls = 0, 0, {}
  s.fix = true
  for _, v in ipairs(redis.call('HVALS', L)) do
    local est = lease_est(v)
    if est then
      s.inflight_tokens = s.inflight_tokens + est
      s.leases = s.leases + 1
      add_class(s, est, 1)
    end
  end
end

-- Returns state, nil; or nil, nil (no state); or nil, error text.  The
-- learned windows of the classes in flight, of the estimates in `ests`
-- (optional) and of the pool are read too.
local function load(ests)
  local raw = redis.call('HMGET', B, unpack(FIELDS_READ))
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
                    "', not an integer this library writes (this call " ..
                    'changed nothing; `tokenmgr reset` starts the pool over)'
      end
      s[name] = n
    elseif REQUIRED[name] then
      return nil, 'TKMSTATE field ' .. name .. ' of ' .. B .. ' is missing' ..
                  ' (this call changed nothing; `tokenmgr reset` starts the ' ..
                  'pool over)'
    end
  end
  if s.rate < 0 or s.period_ms <= 0 then
    return nil, 'TKMSTATE ' .. B .. ' holds an impossible rate ' .. fmt(s.rate) ..
                ' or period ' .. fmt(s.period_ms) .. ' (this call changed ' ..
                'nothing; `tokenmgr reset` starts the pool over)'
  end
  s.inflight_tokens = s.inflight_tokens or 0
  s.cls = {}
  local text = {raw[#FIELDS + 1], raw[#FIELDS + 2]}
  for lo, tokens in string.gmatch(text[1] or '', '(%d+):(%d+)') do
    s.cls[tonumber(lo)] = tonumber(tokens)
  end
  -- A state written before 'leases' was counted: recounted once, and its
  -- older fields go (persist).
  s.upgrade = s.leases == nil
  if not consistent(s) then
    rebuild(s)
  end
  s.win = {['*'] = parse_window(text[2])}
  s.dirty = {}
  local want = {}
  for lo in pairs(s.cls) do
    want[#want + 1] = lo
  end
  for _, c in ipairs(ests or {}) do
    if c > 0 and not s.cls[class_of(c)] then
      want[#want + 1] = class_of(c)
    end
  end
  if #want > 0 then
    local names = {}
    for i, lo in ipairs(want) do
      names[i] = 'learn:' .. fmt(lo)
    end
    local v = redis.call('HMGET', B, unpack(names))
    for i, lo in ipairs(want) do
      s.win[lo] = parse_window(v[i])
    end
  end
  return s, nil
end

-- The window of class lo (read when not loaded yet).
local function window(s, lo)
  if s.win[lo] == nil then
    s.win[lo] = parse_window(redis.call('HGET', B, 'learn:' .. fmt(lo)))
  end
  return s.win[lo]
end

-- The learned ratio of window w at time `at` (now when nil), or nil when it
-- is empty.  s.next_change notes when a held outlier stops counting.
local function learned(s, w, at)
  at = at or now
  if #w == 0 then
    return nil
  end
  -- Kept on the window until it changes (the line asks it for every call
  -- ahead).
  if not w.top then
    local top, top_t, second = 0, 0, 0
    for _, e in ipairs(w) do
      if e[1] >= top then
        second, top, top_t = top, e[1], e[2]
      elseif e[1] > second then
        second = e[1]
      end
    end
    if #w == 1 then
      second = math.min(top, PRIOR)
    end
    w.top, w.top_t, w.second = top, top_t, second
  end
  local top, top_t, second = w.top, w.top_t, w.second
  local hold = HOLD_PERIODS * cfg.period_ms
  local held_until = top_t + hold
  if top > second and at < held_until and top_t - now < hold then
    if at == now and (not s.next_change or held_until < s.next_change) then
      s.next_change = held_until
    end
    return top
  end
  return second
end

-- The ratio a call estimated at c > 0 is valued at (at time `at`).
local function ratio_of(s, c, at)
  return learned(s, window(s, class_of(c)), at) or
         learned(s, s.win['*'], at) or PRIOR
end

-- What a call estimated at c may cost beyond it, in whole tokens.
local function excess(s, c, at)
  if c <= 0 then
    return 0
  end
  return math.ceil(c * (ratio_of(s, c, at) - RATIO_ONE) / RATIO_ONE)
end

-- The reserve of the calls in flight, in whole tokens (never negative).
local function reserve(s)
  local mt = 0
  for lo, tokens in pairs(s.cls) do
    if tokens > 0 then
      mt = mt + tokens * (ratio_of(s, lo) - RATIO_ONE)
    end
  end
  return math.max(0, math.ceil(mt / RATIO_ONE))
end

-- The long run of a class's errors, for foreseeing the line (the deficit
-- limit keeps its window): 'mean:<key>' (thousandths) over 'meann:<key>'
-- calls, the exact mean of the first MEAN_SPAN, a moving average over
-- about MEAN_SPAN after them.  {mean, count}.
local MEAN_SPAN = 32
local function mean_of(s, key)
  s.means = s.means or {}
  local m = s.means[key]
  if m == nil then
    local name = key == '*' and '*' or fmt(key)
    local v = redis.call('HMGET', B, 'mean:' .. name, 'meann:' .. name)
    m = {int_or_nil(v[1]), int_or_nil(v[2])}
    if not (m[1] and m[2] and m[1] >= RATIO_ONE and m[1] <= RATIO_MAX and
            m[2] >= 0 and m[2] <= MEAN_SPAN) then
      m = {RATIO_ONE, 0}
    end
    s.means[key] = m
  end
  return m
end

local function remember(s, key, seen)
  local m = mean_of(s, key)
  m[2] = math.min(m[2] + 1, MEAN_SPAN)
  m[1] = math.floor(m[1] + (seen - m[1]) / m[2] + 0.5)
  s.mean_dirty = s.mean_dirty or {}
  s.mean_dirty[key] = true
  local w = s.win[key] or {}
  w[#w + 1] = {seen, now}
  while #w > WINDOW do
    table.remove(w, 1)
  end
  w.top = nil
  s.win[key] = w
  s.dirty[key] = true
end

-- complete: a call estimated at c cost `consumed` (its lease ended first).
local function learn(s, c, consumed)
  if c <= 0 or consumed < 0 then
    return
  end
  local seen = math.max(RATIO_ONE, math.min(RATIO_MAX,
                                            math.ceil(consumed * RATIO_ONE / c)))
  window(s, class_of(c))
  remember(s, class_of(c), seen)
  remember(s, '*', seen)
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

-- The pool applies a tick this long after the API's (a fiftieth of the
-- period, at most 50 ms): a grant must never reach the API on the tick's
-- tokens before the API has them, and waiters are told the tick's time,
-- so a schedule a millisecond early (a refillIn rounded, the API's clock
-- a little ahead) would be a 429 at every saturated tick.
local function tick_guard(p)
  return math.min(50, math.floor(p / 50))
end

-- The API's balance `left` as of its time ts, brought to the pool's
-- schedule now (after refill(s)), whose ticks are the API's plus
-- tick_guard: ticks the pool applied after the API's time ts are not in
-- `left`, so they are added (a report from just before a tick would lose
-- it); an API tick at or before ts that the pool has not applied yet is in
-- it, so the pool's schedule moves past it (else counted twice: a grant on
-- tokens the API does not have, and a 429).  Only within a period of the
-- pool's last tick: a report further off is a clock that disagrees (or a
-- caller's own timestamp), taken as it is.  The tick is added only when
-- the pool's phase is the API's (phase_ms: the API time of the sync that
-- set it): a phase taken without the API's timestamp is late by the
-- response's unknown latency, and a report from that late part of a period
-- already holds the tick (adding it would be counting it twice; leaving it
-- out loses one tick until the next report).
local function report_as_of(s, left, ts)
  local p = s.period_ms
  if p <= 0 then
    return left
  end
  local api = s.anchor_ms - tick_guard(p) -- the API's last tick
  if ts >= api + p and ts < api + 2 * p then
    s.anchor_ms = s.anchor_ms + p
  elseif s.phase_ms and ts < api and ts >= api - p and left < capacity(s) then
    left = math.min(capacity(s), left + s.rate)
  end
  return left
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
  if #s.expired == 0 then
    return
  end
  local vals = redis.call('HMGET', L, unpack(s.expired))
  for i, id in ipairs(s.expired) do
    s.is_expired[id] = true
    if not lease_est(vals[i]) and not s.fix then
      -- An expiry without a lease of ours, counted as one: count again.
      rebuild(s)
    end
  end
  for i = 1, #s.expired do
    local est = lease_est(vals[i])
    if est then
      s.inflight_tokens = s.inflight_tokens - est
      s.leases = s.leases - 1
      add_class(s, est, -1)
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

local function classes_text(s)
  local parts = {}
  for lo, tokens in pairs(s.cls) do
    if tokens > 0 then
      parts[#parts + 1] = fmt(lo) .. ':' .. fmt(tokens)
    end
  end
  table.sort(parts)
  return table.concat(parts, ',')
end

-- A number of the state that would leave LIMIT, or be no integer: the
-- refusal (nothing written yet), else nil.
local function out_of_domain(name, v)
  if v ~= v or v < -LIMIT or v > LIMIT or v ~= math.floor(v) then
    return redis.error_reply('TKMARG this call would take ' .. name .. ' of ' ..
                             B .. ' to ' .. tostring(v) .. ', outside -' ..
                             fmt(LIMIT) .. '..' .. fmt(LIMIT) ..
                             ' (nothing was changed)')
  end
  return nil
end

-- After rebuild(): what makes the keys agree with the leases again (read
-- here, written by persist()): leases that are not ours, leases without
-- an expiry or with one past the longest lease, expiries without a lease.
local function repair_plan(s)
  local ids = redis.call('HKEYS', L)
  local live, p = {}, {garbage = {}, due = {}, latest = {}, orphans = {}}
  local due, latest = fmt(now + cfg.lease_ttl_ms), fmt(now + LEASE_MAX_MS)
  for i = 1, #ids, 1000 do
    local chunk = {unpack(ids, i, math.min(i + 999, #ids))}
    local vals = redis.call('HMGET', L, unpack(chunk))
    for j, id in ipairs(chunk) do
      if s.is_expired and s.is_expired[id] then
        live[id] = true -- removed with the expired
      elseif lease_est(vals[j]) then
        live[id] = true
        p.due[#p.due + 1], p.due[#p.due + 2] = due, id
        p.latest[#p.latest + 1], p.latest[#p.latest + 2] = latest, id
      else
        p.garbage[#p.garbage + 1] = id
      end
    end
  end
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', E, '-inf', '+inf')) do
    if not live[id] then
      p.orphans[#p.orphans + 1] = id
    end
  end
  return p
end

-- The commands of a list of arguments too long for one call, in chunks.
local function chunked(cmd, key, flag, args, step)
  for i = 1, #args, step do
    if flag then
      redis.call(cmd, key, flag, unpack(args, i, math.min(i + step - 1, #args)))
    else
      redis.call(cmd, key, unpack(args, i, math.min(i + step - 1, #args)))
    end
  end
end

-- Write the state.  Every value is checked and everything to read is read
-- first, so that a refusal writes nothing and nothing fails once writing
-- has begun.  Returns nil, or the error reply.
local function persist(s)
  local f = {'tokens', s.tokens, 'rate', s.rate, 'period_ms', s.period_ms,
             'anchor_ms', s.anchor_ms, 'inflight_tokens', s.inflight_tokens,
             'leases', s.leases}
  for _, name in ipairs({'seq', 'report_ts', 'sync_ms', 'recharge_since_ms',
                         'phase_ms'}) do
    if s[name] then
      f[#f + 1], f[#f + 2] = name, s[name]
    end
  end
  for i = 2, #f, 2 do
    local bad = out_of_domain(f[i - 1], f[i])
    if bad then
      return bad
    end
    f[i] = fmt(f[i])
  end
  f[#f + 1], f[#f + 2] = 'inflight_est', classes_text(s)
  for key in pairs(s.dirty) do
    f[#f + 1] = key == '*' and 'learn:*' or 'learn:' .. fmt(key)
    f[#f + 1] = window_text(s.win[key])
  end
  for key in pairs(s.mean_dirty or {}) do
    local name = key == '*' and '*' or fmt(key)
    f[#f + 1], f[#f + 2] = 'mean:' .. name, fmt(s.means[key][1])
    f[#f + 1], f[#f + 2] = 'meann:' .. name, fmt(s.means[key][2])
  end
  local old = {'recharge_since_ms'}
  if s.recharge_since_ms then
    old = {}
  end
  if s.upgrade then
    -- The estimate errors as versions before 'learn:' kept them.
    old[#old + 1], old[#old + 2] = 'reserve_mt', 'unlearned_tokens'
    for _, name in ipairs(redis.call('HKEYS', B)) do
      if string.match(name, '^ratio:') or string.match(name, '^n:') then
        old[#old + 1] = name
      end
    end
  end
  local plan = s.fix and repair_plan(s)

  redis.call('HSET', B, unpack(f))
  if #old > 0 then
    redis.call('HDEL', B, unpack(old))
  end
  if s.expired and #s.expired > 0 then
    redis.call('HDEL', L, unpack(s.expired))
    redis.call('ZREM', E, unpack(s.expired))
  end
  if plan then
    chunked('HDEL', L, nil, plan.garbage, 1000)
    chunked('ZADD', E, 'NX', plan.due, 1000)
    chunked('ZADD', E, 'LT', plan.latest, 1000)
    chunked('ZREM', E, nil, plan.orphans, 1000)
  end
  return nil
end

local function end_lease(s, id, est)
  s.ended = id
  s.inflight_tokens = s.inflight_tokens - est
  s.leases = s.leases - 1
  add_class(s, est, -1)
end

-- The lease ended by end_lease(), removed with the state: after persist().
local function drop_ended(s)
  if s.ended then
    redis.call('HDEL', L, s.ended)
    redis.call('ZREM', E, s.ended)
  end
end

-- After a change of master (origin.lua sets 'reground_ms'): the balance may
-- miss the last grants and completions, lost with the asynchronous
-- replication, so nothing is granted until a sync from the API's balance
-- grounds it again (sync.lua takes the mark off).  nil when the balance is
-- trusted; else the retry_after_ms of a need_sync denial: -1, sync now
-- (tkm_keepa does), or a short wait while another caller's claim of the
-- /token call (sync_claim.lua, made since the mark) is younger than
-- REGROUND_CLAIM_MS.
local REGROUND_CLAIM_MS = 2000
local function reground_wait(s)
  if not s.reground_ms then
    return nil
  end
  local claim = int_or_nil(redis.pcall('GET', S))
  if claim and claim >= s.reground_ms and now - claim < REGROUND_CLAIM_MS then
    return math.max(1, math.min(250, claim + REGROUND_CLAIM_MS - now))
  end
  return -1
end

local function no_grant(id)
  return redis.error_reply('TKMNOGRANT no reservation ' .. id .. ' in pool ' ..
                           string.match(B, '{(.-)}') ..
                           ' (never granted, already ended or expired)')
end

-- complete and release: the pool's state with the live lease `id` ended.
-- Returns s, est; or nil, an error reply.
local function take_lease(id)
  local est = lease_est(redis.call('HGET', L, id))
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
-- timestamp would freeze the balance (SEED failure 6).  Two reports of the
-- same millisecond arrive in either order: the API's balance only falls
-- between ticks, so the lower one is the later; a report that would set
-- `balance` above what the pool has `otherwise` is the earlier one
-- (`balance` false: not the API's report, never stale).
local function stale_report(s, ts, balance, otherwise)
  if s.report_ts == nil or not balance then
    return false
  end
  if ts == s.report_ts then
    return balance > otherwise
  end
  return ts < s.report_ts and s.report_ts - ts <= cfg.lease_ttl_ms
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

-- The writes of a heartbeat (preflight's list) and the heartbeat itself:
-- `worker` alive now doing `phase`, busy until until_ms (0: not busy; a
-- plain heartbeat ends an earlier busy period), its record's error field
-- `err` (nil: the one it holds).  Busy periods that ended and departed
-- workers do not accumulate: records past the retention go, 100 a beat.
local WRITE_BEAT = {{'ZADD', H, '0', 'm'}, {'ZREM', H, 'm'},
                    {'HSET', W, 'f', 'v'}, {'HDEL', W, 'f'},
                    {'ZADD', U, '0', 'm'}, {'ZREM', U, 'm'},
                    {'ZREMRANGEBYSCORE', U, '0', '0'}}
local function record_beat(worker, until_ms, err, phase)
  if err == nil then
    err = select(2, worker_record(redis.call('HGET', W, worker)))
  end
  redis.call('ZADD', H, fmt(now), worker)
  redis.call('HSET', W, worker, fmt(until_ms) .. '|' .. err .. '|' .. phase)
  if until_ms > 0 then
    redis.call('ZADD', U, fmt(until_ms), worker)
  else
    redis.call('ZREM', U, worker)
  end
  redis.call('ZREMRANGEBYSCORE', U, '-inf', fmt(now))
  local old = redis.call('ZRANGEBYSCORE', H, '-inf',
                         '(' .. fmt(now - cfg.retention_ms), 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('ZREM', H, unpack(old))
    redis.call('ZREM', U, unpack(old))
    redis.call('HDEL', W, unpack(old))
  end
end

local function worker_summary()
  local horizon = now - cfg.retention_ms
  local stale_before = now - cfg.stale_after_ms
  local total = redis.call('ZCOUNT', H, '(' .. fmt(horizon), '+inf')
  local alive = redis.call('ZCOUNT', H, fmt(stale_before), '+inf')
  -- Plus the workers inside a busy period whose heartbeat is stale: only
  -- the busy ones are looked at, never the departed (O(busy x log n)).
  local busy = redis.call('ZRANGEBYSCORE', U, '(' .. fmt(now), '+inf', 'LIMIT', 0, 1000)
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

-- ---- the rules of a grant ----------------------------------------------
--
-- One decision, now (acquire) or ahead of time (the line's look ahead), on
-- a view of the bucket: v = {tokens, anchor_ms, since (recharge start, or
-- nil), held (what the calls in flight hold for their estimates' errors),
-- settle (what they are expected to cost beyond their estimates, charged
-- by the next tick), caution}.
--
-- What a call costs beyond its estimate is known only when it completes.
-- The look ahead values it `caution` of the way from the mean of what the
-- pool learned (expected_excess) to the high quantile the deficit limit
-- holds (excess): a waiter told too early comes back for nothing (a round
-- trip), one told too late leaves tokens unused while it sleeps, unless a
-- caller who is here takes them (may_backfill, which judges at the mean).
-- Measured with bench_policy's mix (calls up to 4 times their estimate,
-- 64 workers): at 0 the mean, 4.6 round trips a call; at 0.5, 3.4 but
-- tokens left unused (utilisation down to 0.87) and more calls passed by
-- newcomers (Jain's index down); a quarter of the way.
local CAUTION = 0.25

-- What a call estimated at c is expected to cost beyond it (a fraction):
-- at the long-run mean of its class (or else of the pool), drawn towards
-- no error at all until it counts a window of calls (the mean of a first
-- call at 4 times its estimate would tell every waiter far too late).
local function expected_excess(s, c)
  if c <= 0 then
    return 0
  end
  local m = mean_of(s, class_of(c))
  if m[2] == 0 then
    m = mean_of(s, '*')
  end
  local r = RATIO_ONE + (m[1] - RATIO_ONE) * math.min(m[2], WINDOW) / WINDOW
  return c * (r - RATIO_ONE) / RATIO_ONE
end

-- caution: 0 the mean, CAUTION the line's forecasts; nil hopeful: the
-- calls in flight cost their estimates (how a lone caller's wait has
-- always been computed).
local function view_of(s, caution)
  local held, mean = reserve(s), 0
  if caution then
    for lo, tokens in pairs(s.cls) do
      if tokens > 0 then
        mean = mean + expected_excess(s, lo) * tokens / lo
      end
    end
  end
  return {tokens = s.tokens, anchor_ms = s.anchor_ms,
          since = s.recharge_since_ms, held = held, caution = caution or 0,
          settle = caution and mean + caution * math.max(0, held - mean) or 0}
end

-- Why a call of `cost` may not start at time t on view v, and the balance
-- refill must bring for it; or nil and what the grant holds for its
-- estimate's error.  A recharge timed out by t is over in v.
local function rule(s, v, cost, t)
  if v.since and t - v.since >= cfg.recharge_timeout_ms then
    v.since = nil
  end
  local cap = capacity(s)
  if v.since then
    local target = cfg.recharge_target
    if cost <= cfg.low_cost_max then
      target = cfg.low_cost_target
    end
    target = math.min(target, cap)
    if v.tokens < target then
      return 'recharging', target
    end
  end
  -- The API admits a call at a positive balance and charges each call when
  -- it completes: a call in flight that Keepa has charged beyond its
  -- estimate, but whose worker has not completed it yet, has taken the
  -- API's balance below the pool's by that excess.  So a call starts only
  -- when the balance covers what those in flight may cost beyond their
  -- estimates (their reserve: the deficit limit's own valuation); their
  -- completions free it, sooner than refill.  With nothing in flight this
  -- is min_start_balance itself.
  if v.tokens - v.held < cfg.min_start then
    return 'insufficient', cfg.min_start
  end
  -- The deficit limit holds for what the calls may really cost: this one
  -- at its estimate's known error (but never so much that it could never
  -- pass) and those in flight at their reserve.
  local extra = math.min(excess(s, cost, t), cap - cfg.max_deficit - cost)
  if v.tokens - cost - v.held - extra < cfg.max_deficit then
    -- Refill need only bring what the calls in flight do not hold: their
    -- completions free their reserve, sooner than refill.
    return 'deficit_limit', cfg.max_deficit + cost + extra
  end
  return nil, extra
end

-- A grant on view v at time t: the grant that reached the recharge target
-- ends recharge, one that leaves the balance below the floor starts it.
local function take(s, v, cost, extra, t)
  v.tokens = v.tokens - cost
  v.since = nil
  if v.tokens < cfg.soft_floor then
    v.since = t
  end
  v.held = v.held + extra
  v.settle = v.settle + expected_excess(s, cost)
end

-- View v moved on to time t (later than its own): past a tick (or when
-- `settled`), the calls in flight have completed (a call takes seconds,
-- refill comes by the period), then the ticks of refill are added.
local function advance(s, v, t, settled)
  local n = math.floor((t - v.anchor_ms) / s.period_ms)
  if n > 0 or settled then
    v.tokens = v.tokens - v.settle
    v.held, v.settle = 0, 0
  end
  if n > 0 then
    local cap = capacity(s)
    if v.tokens < cap then
      v.tokens = math.min(cap, v.tokens + n * s.rate)
    end
    v.anchor_ms = v.anchor_ms + n * s.period_ms
  end
end

-- The earliest time from t on when a call of `cost` may start on view v
-- (v is moved on to it), and what it holds; -1 when refill never lets it.
local function earliest(s, v, cost, t)
  for _ = 1, 12 do
    local why, need = rule(s, v, cost, t)
    if not why then
      return t, need
    end
    local nxt, settled
    if v.tokens < need then
      if s.rate > 0 and need <= math.max(capacity(s), v.tokens) then
        nxt = v.anchor_ms + math.ceil((need - v.tokens) / s.rate) * s.period_ms
      end
    else
      -- Only what the calls in flight hold blocks: look again within a
      -- second (or at the tick), when they have completed.
      nxt, settled = math.min(v.anchor_ms + s.period_ms, t + 1000), true
    end
    if v.since then
      local over = v.since + cfg.recharge_timeout_ms
      if not nxt or over < nxt then
        nxt = over
      end
    end
    if why == 'deficit_limit' and s.next_change and s.next_change > t and
       (not nxt or s.next_change < nxt) then
      nxt = s.next_change -- a held outlier stops counting then
    end
    if not nxt then
      return -1, 0
    end
    if nxt <= t then
      nxt = t + 1
    end
    advance(s, v, nxt, settled)
    t = nxt
  end
  return t, 0
end

-- ---- the line -----------------------------------------------------------
--
-- A waiter that was denied holds a ticket in Q until it is granted:
-- 't:<id>' -> "start|seq|class|cost|worker|enq_ms|due_ms|exp_ms".  The
-- line is served in the order of the tickets' start tags (start-time fair
-- queueing): a class's tickets follow each other by cost x TAG_SCALE /
-- weight ('f:<class>', the tag its next ticket starts at), and a class that
-- was idle starts at the line's virtual time ('vt', the start tag of the
-- last ticket granted at the head).  So backlogged classes share tokens in
-- proportion to their weights, an idle class never waits behind another's
-- backlog, and within a class it is first come, first served.  'seq'
-- numbers the tickets (ties of tags go to the older).  The weights are the
-- callers' configuration when they took their tickets: a changed class
-- list reorders only the tickets taken after it.
--
-- Each attempt of the waiter renews its ticket: due_ms is when it said it
-- would come back, exp_ms a lease TTL after the attempt (the waiter comes
-- back at least every half TTL), after which the ticket is gone.  A waiter
-- late by more than grace_ms() is absent: nobody waits for it and nobody
-- counts it, but it keeps its place until it expires.  Q is deleted when
-- its last ticket goes, which restarts the tags.
local TAG_SCALE = 1000

-- Late by more than this, a waiter is absent (half a period, 250 ms to 2 s).
local function grace_ms()
  return math.min(2000, math.max(250, math.floor(cfg.period_ms / 2)))
end

-- Waiters due at the same time are told to come this far apart (a
-- twentieth of a period, 10 to 100 ms), in the line's order.
local function stagger_ms()
  return math.min(100, math.max(10, math.floor(cfg.period_ms / 20)))
end

local function ticket_text(k)
  return table.concat({fmt(k.start), fmt(k.seq), k.class, fmt(k.cost),
                       k.worker, fmt(k.enq), fmt(k.due), fmt(k.exp)}, '|')
end

local TICKET = '^(%d+)|(%d+)|([%w_.%-]+)|(%d+)|([^|]*)|(%d+)|(%d+)|(%d+)$'
local function parse_ticket(id, v)
  local st, sq, cl, co, wk, en, du, ex = string.match(v, TICKET)
  -- Digits only, and at most 15 of them: within LIMIT.
  if not ex or #st > 15 or #sq > 15 or #co > 15 or #en > 15 or #du > 15 or
     #ex > 15 then
    return nil
  end
  return {id = id, start = tonumber(st), seq = tonumber(sq), class = cl,
          cost = tonumber(co), worker = wk, enq = tonumber(en),
          due = tonumber(du), exp = tonumber(ex)}
end

-- The line as Q holds it: {vt, seq, f = {class -> tag}, tickets (live,
-- any order), by_id, drop (fields to delete: expired tickets, and what
-- this library did not write)}.
local function load_line()
  local raw = redis.call('HGETALL', Q)
  local line = {vt = 0, seq = 0, f = {}, tickets = {}, by_id = {}, drop = {},
                fields = #raw / 2}
  for i = 1, #raw, 2 do
    local k, v = raw[i], raw[i + 1]
    local n = int_or_nil(v)
    if k == 'vt' or k == 'seq' then
      if n and n >= 0 then
        line[k] = n
      else
        line.drop[#line.drop + 1] = k
      end
    elseif string.sub(k, 1, 2) == 'f:' then
      if n and n >= 0 then
        line.f[string.sub(k, 3)] = n
      else
        line.drop[#line.drop + 1] = k
      end
    else
      local t = string.sub(k, 1, 2) == 't:' and
                parse_ticket(string.sub(k, 3), v)
      if t and t.exp >= now then
        line.tickets[#line.tickets + 1] = t
        line.by_id[t.id] = t
      else
        line.drop[#line.drop + 1] = k
      end
    end
  end
  return line
end

local GRACE = grace_ms()
local function present(k)
  return now <= k.due + GRACE
end

local function before(a, b)
  if a.start ~= b.start then
    return a.start < b.start
  end
  return a.seq < b.seq
end

-- The present tickets in the line's order, with `me` (a ticket, or one to
-- be taken) among them; and me's place.
local function line_order(line, me)
  local order = {me}
  for _, k in ipairs(line.tickets) do
    if k.id ~= me.id and present(k) then
      order[#order + 1] = k
    end
  end
  table.sort(order, before)
  for i, k in ipairs(order) do
    if k == me then
      return order, i
    end
  end
end

-- When each of order[1..upto] may expect its grant, from view v on: in
-- the line's order, each after those ahead of it, by the rules alone.  A
-- waiter asleep past that time (told too late) does not hold up those
-- behind it: they may pass it (may_backfill), so its error does not
-- become theirs.  -1: never.
-- Past LOOK_MAX calls the rules are not followed one by one any more: each
-- call adds its expected cost at the refill rate (the script stays short
-- however long the line).
local LOOK_MAX = 128
local function look_ahead(s, v, order, upto, me)
  local g, t = {}, now
  for i = 1, math.min(upto, LOOK_MAX) do
    local k = order[i]
    local at, extra = earliest(s, v, k.cost, t)
    if at < 0 then
      for j = i, upto do
        g[j] = -1
      end
      return g
    end
    take(s, v, k.cost, extra, at)
    g[i], t = at, at
  end
  for i = LOOK_MAX + 1, upto do
    if t < 0 or s.rate <= 0 then
      g[i] = -1
    else
      local k = order[i]
      t = t + math.ceil((k.cost + expected_excess(s, k.cost)) / s.rate *
                        s.period_ms)
      g[i] = t
    end
  end
  return g
end

-- Whether me (order[pos], which may start now holding `extra`) may go
-- before those ahead of it (backfilling).  Past a waiter due back now only
-- when it costs less (among calls alike, first come first served); past
-- one asleep until later whatever it costs, so that the tokens it would
-- not use before then are not left idle.  And only when nobody it passes
-- expects its grant any later for it: a waiter in line checks the head and
-- those expected within the refill it takes (and a period more), as HPC
-- schedulers protect the head's reservation (further back, a refill is
-- within what a forecast can tell, and a waiter told too late would
-- otherwise hold up the line); a newcomer checks everyone, so that it
-- takes only tokens nobody in line is expected to need.
local function may_backfill(s, order, pos, me, extra)
  for i = 1, pos - 1 do
    if order[i].due <= now and order[i].cost <= me.cost then
      return false
    end
  end
  local base = look_ahead(s, view_of(s, 0), order, pos - 1, me)
  local v = view_of(s, 0)
  take(s, v, me.cost, extra, now)
  local after = look_ahead(s, v, order, pos - 1, me)
  local near = now + (math.ceil(me.cost / math.max(s.rate, 1)) + 1) *
                     s.period_ms
  for i = 1, pos - 1 do
    -- Nobody is granted before it comes back.
    local due = math.max(order[i].due, now)
    local was = math.max(base[i], due)
    if base[i] >= 0 and (i == 1 or was <= near or me.due == nil) and
       (after[i] < 0 or math.max(after[i], due) > was) then
      return false
    end
  end
  return true
end

-- How long me (order[pos], not granted now) should wait: until its
-- expected grant, tick-mates in the line's order a stagger apart; when that
-- is now but someone ahead is due first, a little (as long as it is late
-- already, until it would count as absent), and when someone ahead it may
-- not pass is asleep, until just after the first of them is back (not a
-- stagger at a time meanwhile: each would be a round trip).  -1: never.
local function line_wait(s, order, pos, me)
  local g = look_ahead(s, view_of(s, #order > 1 and CAUTION or nil), order,
                       pos, me)
  local mine = g[pos]
  if mine < 0 then
    return -1
  end
  local rank = 0
  for i = 1, pos - 1 do
    if g[i] == mine then
      rank = rank + 1
    end
  end
  local wait = mine - now +
               math.min(rank * stagger_ms(), math.floor(s.period_ms / 2))
  if mine > now then
    return wait
  end
  wait = math.max(wait, stagger_ms())
  local back
  for i = 1, pos - 1 do
    local k = order[i]
    if k.due <= now then
      wait = math.max(wait, math.min(k.due + grace_ms() + 1 - now,
                                     math.max(stagger_ms(), now - k.due)))
    elseif not back or k.due < back then
      back = k.due
    end
  end
  if back then
    wait = math.max(wait, back - now + stagger_ms())
  end
  return wait
end

-- A worker id as a ticket holds it (no '|').
local function ticket_worker(worker)
  return (string.gsub(string.sub(worker, 1, 128), '[^%w_.:@%-]', '_'))
end

-- A new place in line for a call of `cost` in `class` by `worker`: after
-- every ticket taken so far, at its class's next tag (the line's virtual
-- time for a class that was idle).
local function new_ticket(line, class, cost, worker)
  return {id = fmt(line.seq + 1) .. '-' .. fmt(now),
          start = math.max(line.vt, line.f[class] or 0), seq = line.seq + 1,
          class = class, cost = cost, enq = now,
          worker = ticket_worker(worker)}
end

-- Whether me (order[pos]) is granted now; else why not.  And what a
-- grant holds for its estimate's error.  A try never passes anyone.
local function grant_now(s, order, pos, me, try)
  local why, extra = rule(s, view_of(s), me.cost, now)
  if why then
    return false, why, extra
  end
  return pos == 1 or (not try and may_backfill(s, order, pos, me, extra)),
         nil, extra
end

-- Into `set` (HSET's field/value pairs): the tag a call of me's class
-- after me starts at (a new ticket, or a call served without one while
-- others wait: its class pays for it all the same).
local function charge_class(set, me, weight)
  set[#set + 1], set[#set + 2] = 'f:' .. me.class,
                                 fmt(me.start +
                                     math.ceil(me.cost * TAG_SCALE / weight))
end

-- Into `set`: me kept in line, due back after `wait` (at least every half
-- TTL, so that a live waiter keeps its place), gone a lease TTL from now;
-- a new ticket also takes its number and charges its class.  Returns the
-- wait to tell.
local function keep_ticket(set, me, weight, wait, fresh)
  wait = math.min(wait, math.max(1, math.floor(cfg.lease_ttl_ms / 2)))
  me.due, me.exp = now + wait, now + cfg.lease_ttl_ms
  set[#set + 1], set[#set + 2] = 't:' .. me.id, ticket_text(me)
  if fresh then
    set[#set + 1], set[#set + 2] = 'seq', fmt(me.seq)
    charge_class(set, me, weight)
  end
  return wait
end

-- Per class: the present waiters, their tokens, the oldest one's wait so
-- far, and the absent ones.
local function line_summary(line)
  local by = {}
  for _, k in ipairs(line.tickets) do
    local c = by[k.class]
    if not c then
      c = {waiters = 0, tokens = 0, oldest = -1, absent = 0}
      by[k.class] = c
    end
    if present(k) then
      c.waiters = c.waiters + 1
      c.tokens = c.tokens + k.cost
      c.oldest = math.max(c.oldest, now - k.enq)
    else
      c.absent = c.absent + 1
    end
  end
  return by
end

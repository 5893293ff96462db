#!lua flags=no-writes
-- workers (read-only, flagged so): at most `limit` workers heard from
-- within the retention, freshest first, after the count of them all
-- (`total`).
-- @keys pool
-- @policy
-- @call workers(limit)
--   -> {now, total} {id, heartbeat_ms, busy_until_ms, error, error_ms, phase}...
local limit, bad = arg_int(op[1], 'limit', 0, 100000)
bad = bad or preflight({H, W})
if bad then
  return bad
end
local horizon = now - cfg.retention_ms
local total = redis.call('ZCOUNT', H, '(' .. fmt(horizon), '+inf')
local rows = redis.call('ZREVRANGEBYSCORE', H, '+inf', '(' .. fmt(horizon),
                        'WITHSCORES', 'LIMIT', 0, limit)
local reply = {now, total}
if #rows > 0 then
  local ids = {}
  for i = 1, #rows, 2 do
    ids[#ids + 1] = rows[i]
  end
  local infos = redis.call('HMGET', W, unpack(ids))
  for i, id in ipairs(ids) do
    local b, err, phase = worker_record(infos[i])
    local err_ms, kind = string.match(err, '^(%d+):(.*)$')
    reply[#reply + 1] = id
    reply[#reply + 1] = tonumber(rows[2 * i])
    reply[#reply + 1] = b
    reply[#reply + 1] = kind or ''
    reply[#reply + 1] = tonumber(err_ms) or 0
    reply[#reply + 1] = phase
  end
end
return reply

-- heartbeat: `worker` is alive doing `phase`; busy_ms > 0 declares it busy
-- that long (0: not busy; a plain heartbeat ends an earlier busy period).
-- `error` ("redis", "api", or "") is a failure the worker met error_age_ms
-- ago: kept in its record (until a newer one) as the stall rule's evidence
-- of a shared cause.  The record is "busy_until_ms|error_ms:error|phase".
-- @keys pool
-- @policy
-- @call heartbeat(worker, phase, busy_ms, error, error_age_ms)
--   -> {now, busy_until_ms}
local worker, phase, busy = op[1], op[2], tonumber(op[3])
local err, err_age = op[4], tonumber(op[5])
local until_ms = 0
if busy > 0 then
  until_ms = now + busy
end
if err ~= '' then
  err = (now - math.max(0, err_age)) .. ':' .. err
else
  err = select(2, worker_record(redis.call('HGET', W, worker)))
end
redis.call('ZADD', H, now, worker)
redis.call('HSET', W, worker, until_ms .. '|' .. err .. '|' .. phase)
if until_ms > 0 then
  redis.call('ZADD', U, until_ms, worker)
else
  redis.call('ZREM', U, worker)
end
-- Busy periods that ended, and departed workers, do not accumulate: drop
-- records past the retention.
redis.call('ZREMRANGEBYSCORE', U, '-inf', now)
local old = redis.call('ZRANGEBYSCORE', H, '-inf', '(' .. (now - cfg.retention_ms),
                       'LIMIT', 0, 100)
if #old > 0 then
  redis.call('ZREM', H, unpack(old))
  redis.call('ZREM', U, unpack(old))
  redis.call('HDEL', W, unpack(old))
end
return {now, until_ms}

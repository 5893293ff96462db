-- leave: `ticket` (one acquire handed out) leaves the pool's wait queue.
-- A blocking acquire that ends without a grant (canceled, its client
-- closed, Redis failing mid-wait) sends it, so that the waiters behind it
-- need not wait out its lease (acquire itself drops a ticket whose turn is
-- later than its caller would wait).  The queue's key goes with its last
-- ticket, which restarts the tags as acquire does.  left: 1 when the
-- ticket was in line.
-- @keys pool
-- @call leave(ticket) -> {left}
local Q = KEYS[8]
local ticket = ARGV[1]
if not (#ticket <= 40 and string.match(ticket, '^%d+%-%d+$')) then
  return redis.error_reply("TKMARG ticket '" .. string.sub(ticket, 1, 40) ..
                           "' is not one acquire hands out (nothing was " ..
                           'changed)')
end
local left = redis.pcall('HDEL', Q, 't:' .. ticket)
if type(left) == 'table' then
  if string.find(left.err, 'WRONGTYPE', 1, true) then
    return redis.error_reply('TKMSTATE key ' .. Q .. ' is not a hash: ' ..
                             'written by something else (nothing was ' ..
                             'changed; `tokenmgr reset` starts the pool over)')
  end
  return left
end
if left == 1 then
  local rest = redis.call('HKEYS', Q)
  local tickets = false
  for _, k in ipairs(rest) do
    if string.sub(k, 1, 2) == 't:' then
      tickets = true
      break
    end
  end
  if not tickets then
    redis.call('DEL', Q)
  end
end
return {left}

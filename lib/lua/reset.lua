-- reset: delete every key matching `pattern`, the pool's (tokenmgr:{P}:*),
-- and nothing else; `deleted` counts them.
-- @keys pool
-- @policy
-- @call reset(pattern) -> {deleted}
local deleted = 0
local cursor = '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', op[1], 'COUNT', 1000)
  cursor = r[1]
  if #r[2] > 0 then
    deleted = deleted + redis.call('DEL', unpack(r[2]))
  end
until cursor == '0'
return {deleted}

-- release: op[1] grant id.  Reply: {tokens, 0, 0}
local id = op[1]

local s, err = load()
if err then
  return redis.error_reply(err)
end
if not s then
  return no_grant(id)
end
refill(s)
expire(s)
local est = lease(s, id)
if not est then
  return no_grant(id)
end
end_lease(s, id, est)
s.tokens = s.tokens + est
persist(s)
return {s.tokens, 0, 0}

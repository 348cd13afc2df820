-- Settles one call (or adds one token-counter reading): exact use replaces reservations.
-- KEYS: two per check, as for admit.lua.
-- ARGV: member ('' for a reading), admitted_at_ms, actual_tokens, actual_cost_micro, now_ms,
--   then three per check: type (T, C, B or R), amount reserved, unit (t or c; budgets only).
-- Returns {0, used...} (settled use per check, 0 for non-budgets) or {2, index} when a budget
-- must be seeded first (nothing changed).
local function fmt(n) return string.format('%d', n) end
local member = ARGV[1]
local admitted = tonumber(ARGV[2])
local tokens, cost = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local n = (#ARGV - 5) / 3

for i = 1, n do
  if ARGV[5 + (i - 1) * 3 + 1] == 'B' and redis.call('HEXISTS', KEYS[2 * i - 1], 'used') == 0 then
    return {2, i}
  end
end

local out = {0}
for i = 1, n do
  local b = 5 + (i - 1) * 3
  local typ, amt, unit = ARGV[b + 1], tonumber(ARGV[b + 2]), ARGV[b + 3]
  local k1, k2 = KEYS[2 * i - 1], KEYS[2 * i]
  local used = 0
  if typ == 'T' and member ~= '' then
    local sec = math.floor(admitted / 1000)
    local delta = tokens - amt
    if delta ~= 0 and sec > math.floor(now / 1000) - 60 then
      local cur = redis.call('HGET', k1, fmt(sec))
      if cur then
        local v = tonumber(cur) + delta
        if v < 0 then v = 0 end
        redis.call('HSET', k1, fmt(sec), fmt(v))
      end
    end
  elseif typ == 'C' and member ~= '' then
    redis.call('ZREM', k1, member)
  elseif typ == 'B' then
    if member ~= '' then
      local a = redis.call('HGET', k1, 'r:' .. member)
      if a then
        redis.call('HINCRBY', k1, 'reserved', '-' .. a)
        redis.call('HDEL', k1, 'r:' .. member)
        redis.call('ZREM', k2, member)
      end
    end
    local add = tokens
    if unit == 'c' then add = cost end
    if add ~= 0 then
      used = redis.call('HINCRBY', k1, 'used', fmt(add))
    else
      used = tonumber(redis.call('HGET', k1, 'used'))
    end
  end
  out[#out + 1] = used
end
return out

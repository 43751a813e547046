"""The limits intents as Lua, so each runs atomically inside Redis for every worker at once.

Each script does what `KvLimitsStore` does in Python (read kv.py beside these), over hashes:
`run:<run>` (calls, spent, raised, fp, streak), `steps:<run>` and `costs:<run>` (one field per
step), `bucket:<key>` and `breaker:<key>`. Numbers go back as strings: Redis would truncate a
Lua number to an integer.

The per-run scripts take the keys' time to live (ms) as their last argument and renew it on
every use (`TOUCH`), so a finished run's keys expire and a running one's never do.
"""

TOUCH = "for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ARGV[#ARGV]) end\n"

F = "local function f(x) return string.format('%.17g', x) end\n"

ADMIT = (
    F
    + """
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local raised = tonumber(redis.call('HGET', KEYS[1], 'raised') or '0')
if ARGV[6] ~= '' and spent >= tonumber(ARGV[6]) + raised then
  local calls = tonumber(redis.call('HGET', KEYS[1], 'calls') or '0')
  return {cjson.encode({refused = 'cost_cap', calls = calls, streak = 0}), 0, f(spent), f(raised)}
end
local seen = redis.call('HGET', KEYS[2], ARGV[1])
if seen then
"""
    + TOUCH
    + """  return {seen, 1, f(spent), f(raised)}
end
local calls = tonumber(redis.call('HGET', KEYS[1], 'calls') or '0')
local streak = tonumber(redis.call('HGET', KEYS[1], 'streak') or '0')
if (redis.call('HGET', KEYS[1], 'fp') or '') == ARGV[2] then streak = streak + 1
else streak = 1 end
local refused = ''
if ARGV[3] == '1' and calls >= tonumber(ARGV[4]) then refused = 'call_cap'
elseif streak >= tonumber(ARGV[5]) then refused = 'loop'
else
  if ARGV[3] == '1' then calls = calls + 1 end
  redis.call('HSET', KEYS[1], 'calls', calls, 'fp', ARGV[2], 'streak', streak)
end
local answer = cjson.encode({refused = refused, calls = calls, streak = streak})
redis.call('HSET', KEYS[2], ARGV[1], answer)
"""
    + TOUCH
    + """return {answer, 0, f(spent), f(raised)}
"""
)

ADD_COST = (
    F
    + """
local previous = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local before = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local after = before + tonumber(ARGV[2]) - previous
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[1], 'spent', f(after))
"""
    + TOUCH
    + """return {f(before), f(after)}
"""
)

TAKE = (
    F
    + """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local amount, now = tonumber(ARGV[3]), tonumber(ARGV[4])
local level = tonumber(redis.call('HGET', KEYS[1], 'level') or ARGV[1])
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or ARGV[4])
level = math.min(capacity, level + math.max(0, now - at) * rate)
local need = math.max(amount, 1)
local wait = 0
if ARGV[5] ~= '1' and level < need then wait = (need - level) / rate end
if wait == 0 then level = level - amount end
redis.call('HSET', KEYS[1], 'level', f(level), 'at', f(math.max(now, at)))
return f(wait)
"""
)

BREAKER_ALLOW = (
    F
    + """
local now, cooldown = tonumber(ARGV[1]), tonumber(ARGV[2])
local phase = redis.call('HGET', KEYS[1], 'phase') or 'closed'
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if phase == 'closed' then return {phase, failures, 1, '0'} end
local field = 'probe_at'
if phase == 'open' then field = 'opened_at' end
local since = now - tonumber(redis.call('HGET', KEYS[1], field) or '0')
if since < cooldown then return {phase, failures, 0, f(cooldown - since)} end
redis.call('HSET', KEYS[1], 'phase', 'half_open', 'probe_at', ARGV[1])
return {'half_open', failures, 1, '0'}
"""
)

BREAKER_RECORD = """
local phase = redis.call('HGET', KEYS[1], 'phase') or 'closed'
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if ARGV[1] == '1' then
  phase, failures = 'closed', 0
else
  failures = failures + 1
  if phase == 'half_open' or failures >= tonumber(ARGV[3]) then
    phase = 'open'
    redis.call('HSET', KEYS[1], 'opened_at', ARGV[2])
  end
end
redis.call('HSET', KEYS[1], 'phase', phase, 'failures', failures)
return {phase, failures}
"""

/**
 * Lua for the Redis store. Each script is one atomic step of the OTP rules in
 * api/otp/rules.ts, applied to keys built from a prefix and the OTP's subjects
 * (so one Redis, not Redis Cluster). Keep these in step with rules.ts: the store
 * contract suite runs the same cases against both stores.
 *
 * An OTP is a hash: `data` (the record as issued, JSON) plus the fields that
 * change, `status` and `attempts`, so no script has to decode JSON.
 */

/** ARGV: prefix, id, dataJson, maxAttempts, expiresAt, keepMs, cooldownMs, maxPerHour, subjects… */
export const ISSUE_OTP = `
local prefix, id, data = ARGV[1], ARGV[2], ARGV[3]
local maxAttempts, expiresAt = ARGV[4], ARGV[5]
local keepMs, cooldownMs, cap = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local subjects = {}
for i = 9, #ARGV do subjects[#subjects + 1] = ARGV[i] end

for _, s in ipairs(subjects) do
  local ttl = redis.call('PTTL', prefix .. 'lock:' .. s)
  if ttl > 0 then return {'locked', ttl} end
end
for _, s in ipairs(subjects) do
  local ttl = redis.call('PTTL', prefix .. 'cool:' .. s)
  if ttl > 0 then return {'cooldown', ttl} end
end
for _, s in ipairs(subjects) do
  local sent = tonumber(redis.call('GET', prefix .. 'sends:' .. s) or '0')
  if sent >= cap then return {'hourly_cap', redis.call('PTTL', prefix .. 'sends:' .. s)} end
end

for _, s in ipairs(subjects) do
  if cooldownMs > 0 then redis.call('SET', prefix .. 'cool:' .. s, '1', 'PX', cooldownMs) end
  if redis.call('INCR', prefix .. 'sends:' .. s) == 1 then redis.call('PEXPIRE', prefix .. 'sends:' .. s, 3600000) end
  local previous = redis.call('GET', prefix .. 'latest:' .. s)
  if previous and previous ~= id then
    local previousKey = prefix .. 'otp:' .. previous
    if redis.call('HGET', previousKey, 'status') == 'pending' then redis.call('HSET', previousKey, 'status', 'expired') end
  end
  redis.call('SET', prefix .. 'latest:' .. s, id, 'PX', keepMs)
end
local key = prefix .. 'otp:' .. id
redis.call('HSET', key, 'data', data, 'status', 'pending', 'attempts', 0, 'maxAttempts', maxAttempts, 'expiresAt', expiresAt)
redis.call('PEXPIRE', key, keepMs)
return {'ok', 0}
`;

/**
 * ARGV: prefix, id, matched (1|0), now, lockoutThreshold, lockoutMs, subjects…
 * Returns {status, attempts, maxAttempts, lockedMs, applied} or {'missing'};
 * `applied` is 1 when this call counted an attempt (so an approval is this call's).
 */
export const VERIFY_OTP = `
local prefix, id = ARGV[1], ARGV[2]
local matched, now = ARGV[3] == '1', tonumber(ARGV[4])
local threshold, lockoutMs = tonumber(ARGV[5]), tonumber(ARGV[6])
local key = prefix .. 'otp:' .. id
local fields = redis.call('HMGET', key, 'status', 'attempts', 'maxAttempts', 'expiresAt')
local status = fields[1]
if not status then return {'missing'} end
local attempts, maxAttempts, expiresAt = tonumber(fields[2]), tonumber(fields[3]), tonumber(fields[4])
if status ~= 'pending' then return {status, attempts, maxAttempts, 0, 0} end
if now >= expiresAt then
  redis.call('HSET', key, 'status', 'expired')
  return {'expired', attempts, maxAttempts, 0, 0}
end
for i = 7, #ARGV do
  local ttl = redis.call('PTTL', prefix .. 'lock:' .. ARGV[i])
  if ttl > 0 then return {status, attempts, maxAttempts, ttl, 0} end
end

attempts = attempts + 1
if matched then status = 'approved' elseif attempts >= maxAttempts then status = 'max_attempts' end
redis.call('HSET', key, 'status', status, 'attempts', attempts)
for i = 7, #ARGV do
  local failsKey = prefix .. 'fails:' .. ARGV[i]
  if matched then
    redis.call('DEL', failsKey)
  else
    local fails = redis.call('INCR', failsKey)
    redis.call('PEXPIRE', failsKey, lockoutMs)
    if fails >= threshold then
      redis.call('SET', prefix .. 'lock:' .. ARGV[i], '1', 'PX', lockoutMs)
      redis.call('DEL', failsKey)
    end
  end
end
return {status, attempts, maxAttempts, 0, 1}
`;

/** KEYS[1]: job hash. ARGV: expected version, new data. Compare-and-set on the version. */
export const UPDATE_JOB = `
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tonumber(ARGV[1]) + 1, 'data', ARGV[2])
return 1
`;

/**
 * KEYS[1]: the device's sliding-window sorted set. ARGV: now, windowMs, max, member.
 * Drops sends older than the window, then adds this one if there is room.
 */
export const RESERVE_DEVICE_SEND = `
local now, window, max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 1
`;

/**
 * KEYS[1]: the device's presence hash {session, data}. ARGV: expected session
 * ('' = write regardless), new session, data, ttl ms. Returns 1 when written.
 */
export const SET_PRESENCE = `
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'session') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'session', ARGV[2], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;

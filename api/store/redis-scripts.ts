/**
 * Lua for the Redis store. Each script is one atomic step of the OTP rules in
 * api/otp/rules.ts (decideIssue, limitsAfterIssue, settleVerification,
 * limitsAfterCheck: the same checks in the same order), applied to keys built
 * from a prefix and the OTP's subject keys (so one Redis, not Redis Cluster).
 * The memory and SQLite stores call those functions themselves; the store
 * contract suite, decision-order cases included, runs against all three.
 *
 * An OTP is a hash: `data` (the record as issued, JSON) plus the fields that
 * change, `status` and `attempts`, so no script has to decode JSON.
 *
 * The history (api/store/history.ts) is a sorted set per kind, `hist:otp` and
 * `hist:message`, every entry at score 0 so the set orders them by their bytes,
 * `<16-digit createdAt>:<id>` (history.historyMember): newest first is a
 * reverse lex range. `hist:keep` holds `<kind>:<entry>` scored by when the
 * record's key expires, so the clean-up (TRIM_HISTORY) drops each entry when
 * its record goes. The scripts that create a record add both in the same step.
 */

/**
 * Shared by both OTP scripts. A subject is a hash `subj:<key>` with the
 * fields of rules.SubjectLimits (lk lockedUntil, cd cooldownUntil, sn sends,
 * sw sendWindowEndsAt, fl failures, fu failuresUntil, lt latestOtpId, lu
 * latestUntil), times in epoch ms compared with the caller's `now`, as the
 * other stores do; the key itself expires when its last time has passed.
 */
const SUBJECT_HELPERS = `
local function live(value, now) return value and tonumber(value) > now end
local function touch(key)
  local times = redis.call('HMGET', key, 'lk', 'cd', 'sw', 'fu', 'lu')
  local last = 0
  for _, t in ipairs(times) do if t and tonumber(t) > last then last = tonumber(t) end end
  if last > 0 then redis.call('PEXPIREAT', key, last) end
end
`;

/**
 * ARGV: prefix, id, sealed data, maxAttempts, expiresAt, keepUntil, now,
 * cooldownMs, maxPerHour, recordKeepUntil, history entry, subject keys…
 * Returns {'ok'} or {reason, ms left}. rules.decideIssue (locked, then
 * cooldown, then hourly cap), then rules.limitsAfterIssue for each subject.
 * `keepUntil` is the rules' (how long the subject points at this OTP);
 * `recordKeepUntil` may be later, for the history retention.
 */
export const ISSUE_OTP = SUBJECT_HELPERS + `
local prefix, id, data = ARGV[1], ARGV[2], ARGV[3]
local maxAttempts, expiresAt, keepUntil, now = ARGV[4], ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])
local cooldownMs, cap = tonumber(ARGV[8]), tonumber(ARGV[9])
local recordKeepUntil, entry = ARGV[10], ARGV[11]
local subjects = {}
for i = 12, #ARGV do
  local key = prefix .. 'subj:' .. ARGV[i]
  local f = redis.call('HMGET', key, 'lk', 'cd', 'sn', 'sw', 'lt', 'lu')
  subjects[#subjects + 1] = { key = key, lk = f[1], cd = f[2], sn = f[3], sw = f[4], lt = f[5], lu = f[6] }
end

for _, s in ipairs(subjects) do
  if live(s.lk, now) then return {'locked', tonumber(s.lk) - now} end
end
for _, s in ipairs(subjects) do
  if live(s.cd, now) then return {'cooldown', tonumber(s.cd) - now} end
end
for _, s in ipairs(subjects) do
  if live(s.sw, now) and tonumber(s.sn) >= cap then return {'hourly_cap', tonumber(s.sw) - now} end
end

for _, s in ipairs(subjects) do
  if live(s.lu, now) and s.lt ~= id then
    local previousKey = prefix .. 'otp:' .. s.lt
    if redis.call('HGET', previousKey, 'status') == 'pending' then redis.call('HSET', previousKey, 'status', 'expired') end
  end
  local sends, window = 0, now + 3600000
  if live(s.sw, now) then sends, window = tonumber(s.sn), tonumber(s.sw) end
  redis.call('HSET', s.key, 'sn', sends + 1, 'sw', window, 'lt', id, 'lu', keepUntil)
  if cooldownMs > 0 then redis.call('HSET', s.key, 'cd', now + cooldownMs) end
  touch(s.key)
end
local key = prefix .. 'otp:' .. id
redis.call('HSET', key, 'data', data, 'status', 'pending', 'attempts', 0, 'maxAttempts', maxAttempts, 'expiresAt', expiresAt)
redis.call('PEXPIREAT', key, recordKeepUntil)
redis.call('ZADD', prefix .. 'hist:otp', 0, entry)
redis.call('ZADD', prefix .. 'hist:keep', recordKeepUntil, 'otp:' .. entry)
return {'ok', 0}
`;

/**
 * ARGV: prefix, id, matched (1|0), now, lockoutThreshold, lockoutMs, subject keys…
 * Returns {status, attempts, maxAttempts, lockedMs, applied} or {'missing'};
 * `applied` is 1 when this call counted an attempt (so an approval is this call's).
 * rules.settleVerification (settled, then expired, then locked, then count),
 * then rules.limitsAfterCheck for each subject when the attempt counted.
 */
export const VERIFY_OTP = SUBJECT_HELPERS + `
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
  local lk = redis.call('HGET', prefix .. 'subj:' .. ARGV[i], 'lk')
  if live(lk, now) then return {status, attempts, maxAttempts, tonumber(lk) - now, 0} end
end

attempts = attempts + 1
if matched then status = 'approved' elseif attempts >= maxAttempts then status = 'max_attempts' end
redis.call('HSET', key, 'status', status, 'attempts', attempts)
for i = 7, #ARGV do
  local subject = prefix .. 'subj:' .. ARGV[i]
  if matched then
    redis.call('HSET', subject, 'fl', 0)
    redis.call('HDEL', subject, 'fu')
  else
    local f = redis.call('HMGET', subject, 'fl', 'fu')
    local failures = 1
    if live(f[2], now) then failures = tonumber(f[1]) + 1 end
    if failures >= threshold then
      redis.call('HSET', subject, 'fl', 0, 'lk', now + lockoutMs)
      redis.call('HDEL', subject, 'fu')
    else
      redis.call('HSET', subject, 'fl', failures, 'fu', now + lockoutMs)
    end
  end
  touch(subject)
end
return {status, attempts, maxAttempts, 0, 1}
`;

/**
 * KEYS[1]: job hash, KEYS[2]: the due index (sorted set). ARGV: expected
 * version, new data, job id, due-at ms or '' once settled. Compare-and-set on
 * the version; the index moves in the same step, so it never disagrees with the job.
 */
export const UPDATE_JOB = `
if redis.call('HGET', KEYS[1], 'v') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tonumber(ARGV[1]) + 1, 'data', ARGV[2])
if ARGV[4] == '' then redis.call('ZREM', KEYS[2], ARGV[3]) else redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
return 1
`;

/**
 * KEYS[1]: job hash, KEYS[2]: due index, KEYS[3]: the message history,
 * KEYS[4]: `hist:keep`. ARGV: data, keep-until ms, job id, due-at or '',
 * history entry or '' (an OTP's job is listed through its OTP). Create-if-absent.
 */
export const CREATE_JOB = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', 0, 'data', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3]) end
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[3], 0, ARGV[5])
  redis.call('ZADD', KEYS[4], ARGV[2], 'message:' .. ARGV[5])
end
return 1
`;

/**
 * KEYS[1]: `hist:keep`. ARGV: prefix, now, at most how many. Removes the
 * history entries whose record has expired (and their `hist:keep` entries).
 * Returns how many it removed; fewer than asked means none is left.
 */
export const TRIM_HISTORY = `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  local colon = string.find(member, ':', 1, true)
  redis.call('ZREM', ARGV[1] .. 'hist:' .. string.sub(member, 1, colon - 1), string.sub(member, colon + 1))
end
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return #due
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

/**
 * The fraud guard's sliding windows (fraud-rules.ts): a counter is a hash
 * `fraud:n:<key>` of bucket index → count, buckets of windowMs ÷ N; buckets
 * that left the window are dropped when read. A hold is a hash
 * `fraud:hold:<prefix>` {heldAt, until, sent, verified}, indexed by `until`
 * in the sorted set `fraud:holds`.
 */
const FRAUD_HELPERS = `
local function bucketMs(w, n) return math.max(1, math.floor(w / n)) end
local function bucketOf(t, w, n) return math.floor(t / bucketMs(w, n)) end
local function field(b) return string.format('%d', b) end
local function readCounts(key, w, n, now)
  local first = bucketOf(now, w, n) - n + 1
  local flat = redis.call('HGETALL', key)
  local live, dead = {}, {}
  for i = 1, #flat, 2 do
    local b, c = tonumber(flat[i]), tonumber(flat[i + 1])
    if b >= first then live[#live + 1] = {b, c} else dead[#dead + 1] = flat[i] end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  return live
end
local function total(live, upTo)
  local sum = 0
  for _, e in ipairs(live) do if upTo == nil or e[1] <= upTo then sum = sum + e[2] end end
  return sum
end
local function maturedUpTo(now, grace, w, n)
  if grace > 0 then return bucketOf(now - grace, w, n) - 1 end
  return nil
end
local function msUntilRoom(live, w, n, limit, now)
  table.sort(live, function(a, b) return a[1] < b[1] end)
  local left = total(live, nil)
  for _, e in ipairs(live) do
    if e[2] > 0 then
      left = left - e[2]
      if left < limit then return math.max(1, (e[1] + n) * bucketMs(w, n) - now) end
    end
  end
  return 1
end
local function add(key, w, n, at, delta)
  local f = field(bucketOf(at, w, n))
  local count = redis.call('HINCRBY', key, f, delta)
  if count < 0 then redis.call('HSET', key, f, 0) end
  redis.call('PEXPIRE', key, w + bucketMs(w, n))
end
`;

/**
 * ARGV: namespace, now, N, watch ('1'|'0'), prefix, windowMs, minSends,
 * minConversion, graceMs, holdMs, countSend ('1'|'0'), then quotas as
 * (key, limit, windowMs)… rules.planSend: held (or collapsing, which holds),
 * then the first full quota; only an admitted send is counted.
 * Returns {'ok'}, {'held', prefix, tripped, ms, sent, verified} or {'quota', key, limit, ms}.
 */
export const RESERVE_FRAUD_SEND = FRAUD_HELPERS + `
local ns, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local watch, prefix, w = ARGV[4] == '1', ARGV[5], tonumber(ARGV[6])
local minSends, minConv, grace, holdMs, countSend = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[11] == '1'
local sentKey = ns .. 'fraud:n:watch:s:' .. prefix
if watch then
  local holdKey, index = ns .. 'fraud:hold:' .. prefix, ns .. 'fraud:holds'
  local sent = total(readCounts(sentKey, w, n, now), maturedUpTo(now, grace, w, n))
  local verified = total(readCounts(ns .. 'fraud:n:watch:v:' .. prefix, w, n, now), nil)
  local untilMs = tonumber(redis.call('HGET', holdKey, 'until'))
  if untilMs and untilMs <= now then
    redis.call('DEL', holdKey)
    redis.call('ZREM', index, prefix)
    untilMs = nil
  end
  if untilMs then
    if sent > 0 and verified >= minConv * sent then
      redis.call('DEL', holdKey)
      redis.call('ZREM', index, prefix)
    else
      return {'held', prefix, 0, untilMs - now, sent, verified}
    end
  elseif minSends > 0 and sent >= minSends and verified < minConv * sent then
    redis.call('HSET', holdKey, 'heldAt', now, 'until', now + holdMs, 'sent', sent, 'verified', verified)
    redis.call('PEXPIREAT', holdKey, now + holdMs)
    redis.call('ZADD', index, now + holdMs, prefix)
    return {'held', prefix, 1, holdMs, sent, verified}
  end
end
local quotas = {}
for i = 12, #ARGV, 3 do
  local key, limit, qw = ns .. 'fraud:n:' .. ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local live = readCounts(key, qw, n, now)
  if total(live, nil) >= limit then return {'quota', ARGV[i], limit, msUntilRoom(live, qw, n, limit, now)} end
  quotas[#quotas + 1] = {key, qw}
end
for _, q in ipairs(quotas) do add(q[1], q[2], n, now, 1) end
if watch and countSend then add(sentKey, w, n, now, 1) end
return {'ok'}
`;

/** ARGV: namespace, at, N, then (key, windowMs)…: takes back one count from each, at the bucket of `at`. */
export const RELEASE_FRAUD_SEND = FRAUD_HELPERS + `
local ns, at, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 4, #ARGV, 2 do
  local key = ns .. 'fraud:n:' .. ARGV[i]
  if redis.call('HEXISTS', key, field(bucketOf(at, tonumber(ARGV[i + 1]), n))) == 1 then add(key, tonumber(ARGV[i + 1]), n, at, -1) end
end
return 1
`;

/**
 * ARGV: namespace, prefix, now, N, windowMs, minConversion, graceMs.
 * rules.planVerified: counts the verify; lifts a hold that lapsed or whose
 * prefix converts again. Returns 1 when a hold was lifted.
 */
export const RECORD_FRAUD_VERIFIED = FRAUD_HELPERS + `
local ns, prefix, now, n, w = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local minConv, grace = tonumber(ARGV[6]), tonumber(ARGV[7])
local holdKey, index, verifiedKey = ns .. 'fraud:hold:' .. prefix, ns .. 'fraud:holds', ns .. 'fraud:n:watch:v:' .. prefix
add(verifiedKey, w, n, now, 1)
local untilMs = tonumber(redis.call('HGET', holdKey, 'until'))
if not untilMs then return 0 end
local lift = untilMs <= now
if not lift then
  local sent = total(readCounts(ns .. 'fraud:n:watch:s:' .. prefix, w, n, now), maturedUpTo(now, grace, w, n))
  local verified = total(readCounts(verifiedKey, w, n, now), nil)
  lift = sent > 0 and verified >= minConv * sent
end
if not lift then return 0 end
redis.call('DEL', holdKey)
redis.call('ZREM', index, prefix)
return 1
`;

/**
 * ARGV: namespace, prefix, now. Removes the hold; when it was in force, the
 * prefix's watch starts afresh. Returns {heldAt, until, sent, verified} or {}.
 */
export const CLEAR_FRAUD_HOLD = `
local ns, prefix, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local holdKey = ns .. 'fraud:hold:' .. prefix
local hold = redis.call('HMGET', holdKey, 'heldAt', 'until', 'sent', 'verified')
redis.call('DEL', holdKey)
redis.call('ZREM', ns .. 'fraud:holds', prefix)
if not hold[2] or tonumber(hold[2]) <= now then return {} end
redis.call('DEL', ns .. 'fraud:n:watch:s:' .. prefix, ns .. 'fraud:n:watch:v:' .. prefix)
return hold
`;

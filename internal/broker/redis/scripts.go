package redis

import (
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// Streams hold one entry per publication with id "<offset>-0" (or
// "<seq>-0" in the index) and the fields
//
//	d  the message as published (broker.AppendPubMessage)
//	t  acceptance time, ms
//	z  the publication's Size, for byte bounds
//	i  the publication's id (index only)
//
// The meta hash beside a stream holds e (epoch), s (top offset or seq) and
// b (sum of z over the entries). Bounds are applied oldest first, exactly as
// the memory broker applies them, so every broker keeps the same window.
// Publishing applies the size and byte bounds; the age bound is applied when
// reading (History, IndexAfter), which is where it can be seen, and saves a
// stream read on every publication.
const luaCommon = `
local function oldest(s)
  local r = redis.call('xrange', s, '-', '+', 'COUNT', 1)
  if #r == 0 then return nil end
  local e = {id = r[1][1]}
  local f = r[1][2]
  for i = 1, #f, 2 do e[f[i]] = f[i + 1] end
  return e
end

local function fmt(n) return string.format('%d', n) end

-- forget updates the index's id map for an evicted entry e: ids maps an id
-- to the seqs of its entries, oldest first, space-separated (ids repeat
-- rarely, so the list is short). Eviction goes oldest first, so the evicted
-- seq is the list's first, and the next one becomes the earliest.
local function forget(ids, e)
  local v = redis.call('hget', ids, e.i)
  if not v then return end
  local rest = string.match(v, '^%d+ (.+)$')
  if rest then redis.call('hset', ids, e.i, rest) else redis.call('hdel', ids, e.i) end
end

-- trim drops the oldest entries while there are more than size (size > 0),
-- more than maxb bytes (keeping one when keep1), or entries older than ttl ms.
local function trim(s, m, size, maxb, ttl, now, keep1, ids)
  local n = redis.call('xlen', s)
  local b = tonumber(redis.call('hget', m, 'b') or '-1')
  local b0 = b
  if b < 0 then
    b = 0
    for _, ent in ipairs(redis.call('xrange', s, '-', '+')) do
      local f = ent[2]
      for i = 1, #f, 2 do if f[i] == 'z' then b = b + tonumber(f[i + 1]) end end
    end
  end
  while n > 0 do
    local e = nil
    local drop = size > 0 and n > size
    if not drop and maxb > 0 and b > maxb and (n > 1 or not keep1) then drop = true end
    if not drop and ttl > 0 then
      e = oldest(s)
      if now - tonumber(e.t) > ttl then drop = true end
    end
    if not drop then break end
    if e == nil then e = oldest(s) end
    redis.call('xdel', s, e.id)
    n = n - 1
    b = b - tonumber(e.z)
    if ids then forget(ids, e) end
  end
  if b ~= b0 then redis.call('hset', m, 'b', b) end
end
`

// publishScript appends to a channel's stream and/or the index and
// publishes, all in one step: a publication is either stored and sent, or
// neither, and every node sees a channel's publications in offset order and
// indexed publications in seq order.
//
// KEYS: [stream, meta] when keeping history, then [allflag] when not
// indexed, or the three index keys when indexed (and the channel's index
// line when ordered).
// ARGV: 1 flags ("h" history, "x" indexed, "n" do not publish, "r" record
// when the channel last published, "o" index in offset order, "f" index
// now even out of order), 2 body, 3 PUB/SUB channel, 4 all channel,
// 5 history size, 6 history ttl ms, 7 meta ttl s, 8 history max bytes,
// 9 entry size, 10 now ms, 11 new epoch, 12 index size, 13 index ttl ms,
// 14 index max bytes, 15 index channel, 16 publication id, 17 offset and
// 18 epoch given by an earlier step, 19 "1" when the publication before it
// on the channel was recent.
// Returns {offset, epoch, seq, recent}; seq -1 when an ordered index step
// must wait for the channel's previous publication.
//
// On Redis Cluster it publishes with SPUBLISH (sharded PUB/SUB: the message
// goes to the shard that owns the partition's slot, not to every shard), and
// a publication with history that is indexed takes two steps, as the
// channel's keys and the index are in different slots: the first ("h",
// "r", "n") stores it and numbers it in the channel's stream, the second
// ("x", "o") numbers it in the index and publishes. Two publications of one
// channel may reach their second step in either order; the channel's index
// line (its epoch and the last offset indexed, in the index's slot) makes
// the later one wait for the earlier one, so that seq order and offset
// order agree. It waits only while the earlier one may still come: the
// first step says whether the channel published in the last recentMs.
func newPublishScript(sharded bool) *rueidis.Lua {
	cmd := "'publish'"
	if sharded {
		cmd = "'spublish'"
	}
	src := strings.NewReplacer("PUBLISH", cmd, "RECENT", strconv.FormatInt(recentMs, 10),
		"LINETTL", strconv.FormatInt(2*recentMs/1000, 10)).Replace(publishSource)
	return rueidis.NewLuaScript(src)
}

// recentMs is how long after a channel's publication an index step of the
// channel may wait for it (see publishScript): far longer than a step can
// take (IOTimeout), and its index line lives twice as long.
const recentMs = 30000

const publishSource = luaCommon + `
local flags = ARGV[1]
local function has(f) return string.find(flags, f, 1, true) end
local hist, indexed, quiet = has('h'), has('x'), has('n')
local now, z = tonumber(ARGV[10]), tonumber(ARGV[9])
local offset, epoch, seq, recent = tonumber(ARGV[17]), ARGV[18], 0, 0
local k = 1
if hist then
  local s, m = KEYS[1], KEYS[2]
  k = 3
  epoch = redis.call('hget', m, 'e')
  if not epoch then
    epoch = ARGV[11]
    redis.call('del', s)
    redis.call('hset', m, 'e', epoch, 'b', 0)
  end
  if has('r') then
    -- Redis's clock, not the publishers': theirs may differ.
    local t = redis.call('time')
    local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local last = tonumber(redis.call('hget', m, 'l') or '0')
    if ms - last < RECENT then recent = 1 end
    redis.call('hset', m, 'l', ms)
  end
  offset = redis.call('hincrby', m, 's', 1)
  local mttl = tonumber(ARGV[7])
  if mttl > 0 then redis.call('expire', m, mttl) else redis.call('persist', m) end
  local msg = 'p' .. fmt(offset) .. ':' .. epoch .. ':0:' .. ARGV[2]
  if redis.call('xlen', s) == 0 then redis.call('hset', m, 'b', 0) end
  redis.call('xadd', s, fmt(offset) .. '-0', 'd', msg, 't', ARGV[10], 'z', ARGV[9])
  redis.call('hincrby', m, 'b', z)
  trim(s, m, tonumber(ARGV[5]), tonumber(ARGV[8]), 0, now, false)
  local ttl = math.ceil(tonumber(ARGV[6]) / 1000)
  if ttl > 0 then redis.call('expire', s, ttl) end
end
if indexed then
  local s, m, ids = KEYS[k], KEYS[k + 1], KEYS[k + 2]
  if has('o') then
    local line, mine = KEYS[k + 3], epoch .. ' ' .. fmt(offset)
    local v = redis.call('get', line)
    local ep, last = nil, 0
    if v then
      local a, b = string.match(v, '^(%S+) (%d+)$')
      ep, last = a, tonumber(b or '0')
    end
    local inorder = ep == epoch and offset <= last + 1 or ep ~= epoch and (offset == 1 or ARGV[19] ~= '1')
    if not inorder and not has('f') then return {offset, epoch, -1, 0} end
    if ep ~= epoch or offset > last then redis.call('set', line, mine, 'EX', LINETTL) end
  end
  seq = redis.call('hincrby', m, 's', 1)
  local msg = 'p' .. fmt(offset) .. ':' .. epoch .. ':' .. fmt(seq) .. ':' .. ARGV[2]
  local size = tonumber(ARGV[12])
  if size > 0 then
    local id = ARGV[16]
    if redis.call('xlen', s) == 0 then redis.call('hset', m, 'b', 0) end
    redis.call('xadd', s, fmt(seq) .. '-0', 'd', msg, 't', ARGV[10], 'z', ARGV[9], 'i', id)
    redis.call('hincrby', m, 'b', z)
    local v = redis.call('hget', ids, id)
    if v then redis.call('hset', ids, id, v .. ' ' .. fmt(seq)) else redis.call('hset', ids, id, fmt(seq)) end
    trim(s, m, size, tonumber(ARGV[14]), 0, now, true, ids)
  end
  if not quiet then redis.call(PUBLISH, ARGV[15], msg) end
elseif not quiet then
  local msg = 'p' .. fmt(offset) .. ':' .. epoch .. ':0:' .. ARGV[2]
  redis.call(PUBLISH, ARGV[3], msg)
  if redis.call('exists', KEYS[k]) == 1 then redis.call(PUBLISH, ARGV[4], msg) end
end
return {offset, epoch, seq, recent}
`

// newPlainScript publishes a publication that keeps no history and is not
// indexed: to the channel, and to the partition's all-channel while some
// node receives every channel. It is the general script without the stream
// code, which halves its cost in Redis (about 3 µs instead of 7 µs per call,
// measured with redis-benchmark), on the most common path.
//
// KEYS: allflag. ARGV: 1 PUB/SUB channel, 2 all-channel, 3 message.
func newPlainScript(sharded bool) *rueidis.Lua {
	cmd := "'publish'"
	if sharded {
		cmd = "'spublish'"
	}
	return rueidis.NewLuaScript(strings.ReplaceAll(`
redis.call(PUBLISH, ARGV[1], ARGV[3])
if redis.call('exists', KEYS[1]) == 1 then redis.call(PUBLISH, ARGV[2], ARGV[3]) end
return 1
`, "PUBLISH", cmd))
}

// historyScript reads a stream, creating its position (a new epoch) when
// the stream has none.
//
// KEYS: stream, meta. ARGV: 1 meta ttl s, 2 new epoch, 3 ttl ms, 4 now ms,
// 5 since offset ("" for none), 6 limit (-1 all), 7 "1" for reverse.
// Returns {top, epoch, entries}.
var historyScript = rueidis.NewLuaScript(luaCommon + `
local s, m = KEYS[1], KEYS[2]
local v = redis.call('hmget', m, 'e', 's')
local epoch, top = v[1], tonumber(v[2] or '0')
if not epoch then
  epoch = ARGV[2]
  top = 0
  redis.call('del', s)
  redis.call('hset', m, 'e', epoch, 's', 0, 'b', 0)
  local mttl = tonumber(ARGV[1])
  if mttl > 0 then redis.call('expire', m, mttl) end
end
local limit = tonumber(ARGV[6])
if limit == 0 then return {top, epoch, {}} end
local ttl = tonumber(ARGV[3])
if ttl > 0 then trim(s, m, 0, 0, ttl, tonumber(ARGV[4]), false) end
local since = ARGV[5]
local r
if ARGV[7] == '1' then
  local from = '+'
  if since ~= '' then from = '(' .. since .. '-0' end
  if limit > 0 then r = redis.call('xrevrange', s, from, '-', 'COUNT', limit)
  else r = redis.call('xrevrange', s, from, '-') end
else
  local from = '-'
  if since ~= '' then from = '(' .. since .. '-0' end
  if limit > 0 then r = redis.call('xrange', s, from, '+', 'COUNT', limit)
  else r = redis.call('xrange', s, from, '+') end
end
return {top, epoch, r}
`)

// removeHistoryScript drops a stream's publications and keeps its position.
var removeHistoryScript = rueidis.NewLuaScript(`
redis.call('del', KEYS[1])
if redis.call('exists', KEYS[2]) == 1 then redis.call('hset', KEYS[2], 'b', 0) end
return 1
`)

// indexAfterScript reads the index after the earliest entry with an id.
//
// KEYS: the three index keys. ARGV: 1 id ("" for all), 2 ttl ms, 3 now ms.
// Returns {top, found (0/1), entries}.
var indexAfterScript = rueidis.NewLuaScript(luaCommon + `
local s, m, ids = KEYS[1], KEYS[2], KEYS[3]
local top = tonumber(redis.call('hget', m, 's') or '0')
local ttl = tonumber(ARGV[2])
if ttl > 0 then trim(s, m, 0, 0, ttl, tonumber(ARGV[3]), true, ids) end
if ARGV[1] == '' then return {top, 1, redis.call('xrange', s, '-', '+')} end
local seq = string.match(redis.call('hget', ids, ARGV[1]) or '', '^(%d+)')
if not seq then return {top, 0, {}} end
return {top, 1, redis.call('xrange', s, '(' .. seq .. '-0', '+')}
`)

// Presence: a hash of client id -> info and a sorted set of client id ->
// expiry (ms). Entries their node stopped refreshing are dropped on read.
var addPresenceScript = rueidis.NewLuaScript(`
redis.call('hset', KEYS[1], ARGV[1], ARGV[2])
redis.call('zadd', KEYS[2], ARGV[3], ARGV[1])
redis.call('expire', KEYS[1], ARGV[4])
redis.call('expire', KEYS[2], ARGV[4])
return 1
`)

var removePresenceScript = rueidis.NewLuaScript(`
redis.call('hdel', KEYS[1], ARGV[1])
redis.call('zrem', KEYS[2], ARGV[1])
return 1
`)

var presenceScript = rueidis.NewLuaScript(`
local gone = redis.call('zrangebyscore', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(gone) do redis.call('hdel', KEYS[1], id) end
if #gone > 0 then redis.call('zremrangebyscore', KEYS[2], '-inf', ARGV[1]) end
return redis.call('hgetall', KEYS[1])
`)

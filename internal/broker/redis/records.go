package redis

import (
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Shared records (broker.SharedRecords) live in one sorted set per set
// name: member = the record, score = its expiry in ms. The key expires with
// its last record.
var putRecordScript = rueidis.NewLuaScript(`
redis.call('zremrangebyscore', KEYS[1], '-inf', ARGV[3])
local old = redis.call('zscore', KEYS[1], ARGV[1])
if not old or tonumber(old) < tonumber(ARGV[2]) then
  redis.call('zadd', KEYS[1], ARGV[2], ARGV[1])
end
local last = redis.call('zrange', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 2 then redis.call('pexpireat', KEYS[1], last[2]) end
return 1
`)

// PutRecord implements broker.SharedRecords.
func (b *Broker) PutRecord(set string, data []byte, until time.Time) error {
	c, err := b.conn()
	if err != nil {
		return err
	}
	ctx, cancel := b.timeout()
	defer cancel()
	args := []string{string(data), strconv.FormatInt(until.UnixMilli(), 10), strconv.FormatInt(time.Now().UnixMilli(), 10)}
	if err := putRecordScript.Exec(ctx, c, []string{b.keys.records(set)}, args).Error(); err != nil {
		return unavailable("store a record", err)
	}
	return nil
}

// Records implements broker.SharedRecords.
func (b *Broker) Records(set string) ([][]byte, error) {
	c, err := b.conn()
	if err != nil {
		return nil, err
	}
	ctx, cancel := b.timeout()
	defer cancel()
	now := "(" + strconv.FormatInt(time.Now().UnixMilli(), 10)
	list, err := c.Do(ctx, c.B().Zrangebyscore().Key(b.keys.records(set)).Min(now).Max("+inf").Build()).AsStrSlice()
	if err != nil {
		return nil, unavailable("read records", err)
	}
	out := make([][]byte, len(list))
	for i, r := range list {
		out[i] = []byte(r)
	}
	return out, nil
}

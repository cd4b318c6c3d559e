package redis

import (
	"hash/fnv"
	"strconv"
)

// keyspace names every key and PUB/SUB channel. Each channel belongs to one
// of n partitions; every key and PUB/SUB channel of the channel carries the
// partition's hash tag, so on Redis Cluster they share a slot (one script
// touches them all) and the partitions' slots are spread evenly over the
// slot range, hence over the cluster's shards. Node-wide names (control,
// the Mercure index) share one more tag.
//
//	<p>.stream.{t}.<channel>      history stream (entry id = offset)
//	<p>.meta.{t}.<channel>        hash: e epoch, s top offset, b bytes
//	<p>.presence.{t}.<channel>    hash: client id -> client info
//	<p>.presence.exp.{t}.<channel> zset: client id -> expiry (ms)
//	<p>.allflag.{t}               set while some node receives every channel
//	<p>.ch.{t}.<channel>          PUB/SUB: the channel's messages
//	<p>.all.{t}                   PUB/SUB: every publication of the partition
//	<p>.anchor.{t}                PUB/SUB (cluster): nobody publishes; keeps a
//	                              partition's connection told when its slot moves
//	<p>.control.{m}, <p>.node.{m}.<id>, <p>.index.{m}   PUB/SUB
//	<p>.index.stream.{m}, .index.meta.{m}, .index.ids.{m} (id -> its seqs)
//	<p>.index.line.{m}.<channel>  (cluster) epoch and last offset indexed
//	<p>.records.{m}.<set>         zset: shared records (revocations) -> expiry (ms)
type keyspace struct {
	prefix string
	tags   []string // per partition, with braces
	mtag   string   // tag of node-wide names, with braces
}

const clusterSlots = 16384

func newKeyspace(prefix string, n int) keyspace {
	k := keyspace{prefix: prefix, tags: make([]string, n)}
	for i := range n {
		k.tags[i] = "{" + slotTag(i*clusterSlots/n, (i+1)*clusterSlots/n) + "}"
	}
	k.mtag = "{" + slotTag(0, clusterSlots) + "m}"
	return k
}

// slotTag returns the shortest decimal string whose hash slot is in [lo, hi).
// Every node computes the same tags.
func slotTag(lo, hi int) string {
	for i := 0; ; i++ {
		s := strconv.Itoa(i)
		if sl := int(crc16(s) % clusterSlots); sl >= lo && sl < hi {
			return s
		}
	}
}

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster maps keys to slots with.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// partition maps a channel to its partition with jump consistent hashing.
func (k *keyspace) partition(channel string) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(channel))
	key := h.Sum64()
	var b, j int64 = -1, 0
	n := int64(len(k.tags))
	for j < n {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

func (k *keyspace) name(kind string, part int, channel string) string {
	return k.prefix + "." + kind + "." + k.tags[part] + "." + channel
}

func (k *keyspace) stream(p int, ch string) string   { return k.name("stream", p, ch) }
func (k *keyspace) meta(p int, ch string) string     { return k.name("meta", p, ch) }
func (k *keyspace) presence(p int, ch string) string { return k.name("presence", p, ch) }
func (k *keyspace) presExp(p int, ch string) string  { return k.name("presence.exp", p, ch) }
func (k *keyspace) pubsub(p int, ch string) string   { return k.name("ch", p, ch) }
func (k *keyspace) pubsubPrefix(p int) string        { return k.prefix + ".ch." + k.tags[p] + "." }
func (k *keyspace) allChannel(p int) string          { return k.prefix + ".all." + k.tags[p] }
func (k *keyspace) anchor(p int) string              { return k.prefix + ".anchor." + k.tags[p] }
func (k *keyspace) allFlag(p int) string             { return k.prefix + ".allflag." + k.tags[p] }
func (k *keyspace) control() string                  { return k.prefix + ".control." + k.mtag }
func (k *keyspace) node(id string) string            { return k.prefix + ".node." + k.mtag + "." + id }
func (k *keyspace) indexChannel() string             { return k.prefix + ".index." + k.mtag }
func (k *keyspace) records(set string) string        { return k.prefix + ".records." + k.mtag + "." + set }
func (k *keyspace) indexLine(ch string) string       { return k.prefix + ".index.line." + k.mtag + "." + ch }
func (k *keyspace) indexKeys() []string {
	return []string{k.prefix + ".index.stream." + k.mtag, k.prefix + ".index.meta." + k.mtag,
		k.prefix + ".index.ids." + k.mtag}
}

// Package redis is the Redis broker: publications, join/leave and control
// messages cross nodes over Redis PUB/SUB (sharded PUB/SUB on a cluster);
// history streams, the Mercure index and presence live in Redis, each write
// and its publish done atomically by one script. Redis 6.2+, Valkey, Sentinel
// and Cluster (7.0+) are supported; see docs/scaling.md.
package redis

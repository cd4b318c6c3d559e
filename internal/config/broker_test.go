package config

import (
	"reflect"
	"testing"
)

func TestValidateBroker(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Broker)
		want   []string
	}{
		{"memory default", func(*Broker) {}, nil},
		{"redis default", func(b *Broker) { b.Type = "redis" }, nil},
		{"redis sentinel url", func(b *Broker) {
			b.Type, b.Redis.Address = "redis", "redis+sentinel://127.0.0.1:26379?sentinel_master_name=m"
		}, nil},
		{"nats with redis store", func(b *Broker) { b.Type, b.NATS.Store = "nats", "redis" }, nil},
		{"unknown type", func(b *Broker) { b.Type = "kafka" }, []string{`broker.type: must be one of memory, redis, nats (got "kafka")`}},
		{"at_start", func(b *Broker) { b.AtStart = "later" }, []string{`broker.at_start: must be wait or exit (got "later")`}},
		{"redis scheme", func(b *Broker) { b.Type, b.Redis.Address = "redis", "http://h:1" },
			[]string{`broker.redis.address: scheme "http" must be one of redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster, rediss+cluster, unix`}},
		{"redis prefix braces", func(b *Broker) { b.Type, b.Redis.Prefix = "redis", "a{b}" },
			[]string{"broker.redis.prefix: must be non-empty and have no { or } (they would change the keys' hash slots)"}},
		{"redis partitions", func(b *Broker) { b.Type, b.Redis.Partitions = "redis", 0 }, []string{"broker.redis.partitions: must be from 1 to 16384"}},
		{"redis settings unchecked with memory", func(b *Broker) { b.Redis.Partitions = 0 }, nil},
		{"nats url", func(b *Broker) { b.Type, b.NATS.URL = "nats", "127.0.0.1:4222" }, []string{"broker.nats.url: each URL must be nats://host:port or tls://host:port"}},
		{"nats store", func(b *Broker) { b.Type, b.NATS.Store = "nats", "disk" }, []string{`broker.nats.store: must be node or redis (got "disk")`}},
		{"nats prefix", func(b *Broker) { b.Type, b.NATS.Prefix = "nats", "a.>" },
			[]string{"broker.nats.prefix: must be a NATS subject without wildcards, spaces or a leading or trailing dot"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mutate(&c.Broker)
			var got []string
			for _, p := range c.Validate() {
				got = append(got, p.Key+": "+p.Msg)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
		})
	}
}

func TestBrokerFromEnvironment(t *testing.T) {
	cfg, err := Load(Source{Env: []string{"HERALD_BROKER_TYPE=nats", "HERALD_BROKER_NATS_URL=nats://10.0.0.1:4222",
		"HERALD_BROKER_NATS_STORE=redis", "HERALD_BROKER_REDIS_ADDRESS=redis://r:6379/2", "HERALD_NODE_ID=n1"}})
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Broker
	if b.Type != "nats" || b.NATS.URL != "nats://10.0.0.1:4222" || b.NATS.Store != "redis" || b.Redis.Address != "redis://r:6379/2" || cfg.NodeID != "n1" || !b.UsesRedis() {
		t.Fatalf("broker from env: %+v node %q", b, cfg.NodeID)
	}
}

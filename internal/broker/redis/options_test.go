package redis

import (
	"reflect"
	"strings"
	"testing"
)

func TestAddressForms(t *testing.T) {
	tests := []struct {
		o      Options
		addrs  []string
		topo   topology
		user   string
		pass   string
		db     int
		tls    bool
		master string
	}{
		{o: Options{Address: "127.0.0.1:6379"}, addrs: []string{"127.0.0.1:6379"}},
		{o: Options{Address: "redis://u:p@h:7000/3"}, addrs: []string{"h:7000"}, user: "u", pass: "p", db: 3},
		{o: Options{Address: "redis://h"}, addrs: []string{"h:6379"}},
		{o: Options{Address: "rediss://h:6380", TLSServerName: "x"}, addrs: []string{"h:6380"}, tls: true},
		{o: Options{Address: "h:6379", TLS: true, Password: "pw", User: "acl"}, addrs: []string{"h:6379"}, tls: true, user: "acl", pass: "pw"},
		{o: Options{Address: "redis+sentinel://s1?sentinel_master_name=m&addr=s2:26380"}, addrs: []string{"s1:26379", "s2:26380"}, topo: topoSentinel, master: "m"},
		{o: Options{Address: "rediss+sentinel://s1:26379", SentinelMasterName: "mm"}, addrs: []string{"s1:26379"}, topo: topoSentinel, master: "mm", tls: true},
		{o: Options{Address: "redis+cluster://c1:7000?addr=c2:7001"}, addrs: []string{"c1:7000", "c2:7001"}, topo: topoCluster},
		{o: Options{Address: "unix:///run/redis.sock"}, addrs: []string{"/run/redis.sock"}},
	}
	for _, tc := range tests {
		o := tc.o.withDefaults()
		opt, topo, err := o.clientOption()
		if err != nil {
			t.Errorf("%s: %v", tc.o.Address, err)
			continue
		}
		if !reflect.DeepEqual(opt.InitAddress, tc.addrs) || topo != tc.topo || opt.Username != tc.user || opt.Password != tc.pass ||
			opt.SelectDB != tc.db || (opt.TLSConfig != nil) != tc.tls || opt.Sentinel.MasterSet != tc.master {
			t.Errorf("%s: addrs %v topo %v user %q pass %q db %d tls %v master %q", tc.o.Address, opt.InitAddress, topo,
				opt.Username, opt.Password, opt.SelectDB, opt.TLSConfig != nil, opt.Sentinel.MasterSet)
		}
		if tc.topo == topoSentinel && tc.tls && opt.Sentinel.TLSConfig == nil {
			t.Errorf("%s: the sentinels are reached without TLS", tc.o.Address)
		}
	}
	for addr, want := range map[string]string{
		"":                            "empty",
		"localhost":                   "not host:port",
		"http://h:1":                  `scheme "http"`,
		"redis+sentinel://s:26379":    "sentinel_master_name",
		"redis+cluster://c:7000/2":    "only database 0",
		"redis://h:1/x":               "not a database number",
		"redis://user:s3cret@h:1/%zz": "not a valid URL",
	} {
		o := Options{Address: addr}
		err := o.Validate()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one mentioning %q", addr, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: the password appears in %v", addr, err)
		}
	}
	if got := RedactAddress("redis://u:s3cret@h:1?sentinel_password=x"); strings.Contains(got, "s3cret") || strings.Contains(got, "=x") {
		t.Errorf("redacted: %s", got)
	}
}

func TestPartitionTagsSpreadOverSlots(t *testing.T) {
	k := newKeyspace("herald", 16)
	seen := map[int]bool{}
	for i, tag := range k.tags {
		slot := int(crc16(strings.Trim(tag, "{}")) % clusterSlots)
		if slot < i*clusterSlots/16 || slot >= (i+1)*clusterSlots/16 {
			t.Fatalf("partition %d tag %s is in slot %d", i, tag, slot)
		}
		seen[slot] = true
	}
	if crc16("123456789") != 0x31C3 {
		t.Fatalf("crc16 is not CRC-16/XMODEM")
	}
	counts := make([]int, 16)
	for i := range 16000 {
		counts[k.partition("channel-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune(i)))]++
	}
	for p, n := range counts {
		if n == 0 {
			t.Fatalf("partition %d got no channel: %v", p, counts)
		}
	}
}

package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker/brokertest"
	"github.com/heraldhub/herald/internal/config"
	"github.com/heraldhub/herald/internal/testutil"
)

// A mistake in the Redis broker's TLS or ACL settings reaches /health as
// the broker's words with the hint that names the setting to fix, and
// never with the password.
func TestHealthSaysWhyRedisRefuses(t *testing.T) {
	tf := brokertest.NewTLSFiles(t)
	rs := brokertest.StartRedisTLS(t, tf)
	const password = "health-pw-71c2"
	if _, err := rs.Call("ACL", "SETUSER", "herald", "reset", "on", ">"+password, "~herald.*", "&herald.*", "+@all"); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		set  func(r *config.RedisBroker)
		want string
	}{
		{"UnknownCA", func(r *config.RedisBroker) { r.TLSCAFile = tf.OtherCAFile }, "set broker.redis.tls_ca_file"},
		{"WrongServerName", func(r *config.RedisBroker) { r.TLSServerName = "redis.example.com" }, "broker.redis.tls_server_name"},
		{"WrongPassword", func(r *config.RedisBroker) { r.Password = password + "-wrong" }, "check broker.redis.user and broker.redis.password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			cfg := testutil.Config()
			cfg.Broker.Type = "redis"
			r := &cfg.Broker.Redis
			r.Address, r.TLSCAFile, r.User, r.Password = "rediss://"+rs.Addr(), tf.CAFile, "herald", password
			c.set(r)
			srv := testutil.Start(t, cfg)
			brokertest.Eventually(t, 10*time.Second, func() error {
				resp, err := http.Get("http://" + srv.Addr + "/health")
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, _ := io.ReadAll(resp.Body)
				var h struct{ Status, Error string }
				if err := json.Unmarshal(body, &h); err != nil {
					return fmt.Errorf("/health answered %d %q: %v", resp.StatusCode, body, err)
				}
				if strings.Contains(string(body), password) {
					t.Fatalf("/health quotes the password: %s", body)
				}
				if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(h.Error, c.want) {
					return fmt.Errorf("/health answered %d %s; want 503 with %q", resp.StatusCode, body, c.want)
				}
				return nil
			})
		})
	}
}

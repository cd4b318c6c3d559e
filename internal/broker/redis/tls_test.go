package redis

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/broker/brokertest"
)

// A redis-server that serves TLS only (no plain port), with a certificate
// of a private CA: the broker reaches it with rediss:// or broker.redis.tls,
// trusting that CA (broker.redis.tls_ca_file); each mistake in that set-up
// reaches Health (hence /health and the log) with a hint naming the option
// that fixes it. (The shared-store suite runs over TLS in
// TestClusterTLSAndACL.)
func TestRedisTLS(t *testing.T) {
	t.Parallel()
	tf := brokertest.NewTLSFiles(t)
	srv := brokertest.StartRedisTLS(t, tf)
	rediss := "rediss://" + srv.Addr()
	withCA := func(o *Options) { o.TLSCAFile = tf.CAFile }
	t.Run("Delivery", func(t *testing.T) {
		t.Parallel()
		brokertest.RunDelivery(t, nodes(rediss, withCA))
	})
	t.Run("HostPortWithTLSOption", func(t *testing.T) {
		t.Parallel()
		nodes(srv.Addr(), func(o *Options) { o.TLS, o.TLSCAFile = true, tf.CAFile })(t)(t, &brokertest.Recorder{})
	})
	t.Run("ServerNameOption", func(t *testing.T) {
		t.Parallel()
		// The certificate names localhost and 127.0.0.1; an address by
		// another name is verified against tls_server_name.
		nodes(rediss, func(o *Options) { o.TLSCAFile, o.TLSServerName = tf.CAFile, "localhost" })(t)(t, &brokertest.Recorder{})
	})
	mistakes := []struct {
		name  string
		addr  string
		tweak func(*Options)
		want  []string // in the error, in this order
	}{
		{"UnknownCA", rediss, func(o *Options) { o.TLSCAFile = tf.OtherCAFile },
			[]string{"certificate signed by unknown authority", "set broker.redis.tls_ca_file"}},
		{"SystemCAs", rediss, nil,
			[]string{"certificate signed by unknown authority", "set broker.redis.tls_ca_file"}},
		{"WrongServerName", rediss, func(o *Options) { o.TLSCAFile, o.TLSServerName = tf.CAFile, "redis.example.com" },
			[]string{"redis.example.com", "broker.redis.tls_server_name"}},
		{"PlainToTLSOnly", "redis://" + srv.Addr(), nil,
			[]string{"use rediss://"}},
	}
	for _, m := range mistakes {
		t.Run(m.name, func(t *testing.T) {
			t.Parallel()
			o := Options{Address: m.addr, IOTimeout: time.Second}
			if m.tweak != nil {
				m.tweak(&o)
			}
			waitHealthSays(t, o, m.want...)
		})
	}
	t.Run("ExpiredCertificate", func(t *testing.T) {
		t.Parallel()
		expired := *tf
		expired.CertFile = tf.ExpiredCertFile
		srv := brokertest.StartRedisTLS(t, &expired)
		waitHealthSays(t, Options{Address: "rediss://" + srv.Addr(), TLSCAFile: tf.CAFile, IOTimeout: time.Second},
			"certificate has expired", "expired, not valid yet")
	})
	t.Run("ServerWantsAClientCertificate", func(t *testing.T) {
		t.Parallel()
		srv := brokertest.StartRedisTLS(t, tf, "tls-auth-clients yes")
		waitHealthSays(t, Options{Address: "rediss://" + srv.Addr(), TLSCAFile: tf.CAFile, IOTimeout: time.Second},
			"tls-auth-clients no")
	})
	t.Run("TLSToPlainServer", func(t *testing.T) {
		t.Parallel()
		plain := brokertest.StartRedis(t)
		// Redis waits for more of what it takes for a command: the
		// handshake gets no answer until the dial's time is up.
		waitHealthSays(t, Options{Address: "rediss://" + plain.Addr(), TLSCAFile: tf.CAFile, IOTimeout: time.Second,
			ConnectTimeout: 300 * time.Millisecond}, "use redis://")
	})
}

// waitHealthSays starts a node with o and waits until its Health says each
// of want, in that order, as a broker.ErrUnavailable error; it returns the
// node and that error.
func waitHealthSays(t *testing.T, o Options, want ...string) (*Broker, error) {
	t.Helper()
	b, err := New(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Run("node-1", &brokertest.Recorder{}); err != nil {
		t.Fatal(err)
	}
	var last error
	brokertest.Eventually(t, 10*time.Second, func() error {
		last = b.Health()
		if last == nil {
			return errors.New("Health says nil, want an error")
		}
		if !errors.Is(last, broker.ErrUnavailable) {
			return errors.New("Health's error is not broker.ErrUnavailable: " + last.Error())
		}
		rest := last.Error()
		for _, w := range want {
			i := strings.Index(rest, w)
			if i < 0 {
				return errors.New("Health says " + last.Error() + "; want " + strings.Join(want, " … "))
			}
			rest = rest[i+len(w):]
		}
		return nil
	})
	t.Logf("Health: %v", last)
	return b, last
}

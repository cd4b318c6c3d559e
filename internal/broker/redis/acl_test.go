package redis

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/broker/brokertest"
)

// aclPassword is the password of the ACL user in these tests.
const aclPassword = "acl-s3cret-pw"

// documentedACL returns the ACL SETUSER command that docs/scaling.md gives
// for Herald's Redis user, as arguments, with the tests' password: the
// tests run the broker as that user, so the page says what works.
func documentedACL(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile("../../../docs/scaling.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(line, "ACL SETUSER herald ") {
			args := strings.Fields(line)
			for i, a := range args {
				if a == ">PASSWORD" {
					args[i] = ">" + aclPassword
				}
			}
			return args
		}
	}
	t.Fatal("docs/scaling.md gives no line that starts with ACL SETUSER herald")
	return nil
}

// setACL runs args (ACL SETUSER …) on every server.
func setACL(t *testing.T, args []string, servers ...*brokertest.RedisServer) {
	t.Helper()
	for _, s := range servers {
		if _, err := s.Call(args...); err != nil {
			t.Fatalf("%s on %s: %v", strings.Join(args[:3], " "), s.Addr(), err)
		}
	}
}

// asACLUser makes the nodes log in as the documented user, with a prefix
// under "herald" (the ACL's key and channel patterns).
func asACLUser(o *Options) {
	o.Prefix = "herald." + o.Prefix
	o.User, o.Password = "herald", aclPassword
}

// runAsACLUser runs the conformance suite and the shared records as the
// documented ACL user, through addr.
func runAsACLUser(t *testing.T, addr string, tweak func(*Options)) {
	opts := func(o *Options) {
		asACLUser(o)
		if tweak != nil {
			tweak(o)
		}
	}
	t.Run("Single", func(t *testing.T) { t.Parallel(); brokertest.RunSingle(t, nodes(addr, opts)) })
	t.Run("Delivery", func(t *testing.T) { t.Parallel(); brokertest.RunDelivery(t, nodes(addr, opts)) })
	t.Run("SharedStore", func(t *testing.T) { t.Parallel(); brokertest.RunSharedStore(t, nodes(addr, opts)) })
	t.Run("Records", func(t *testing.T) {
		t.Parallel()
		newNode := nodes(addr, opts)(t)
		a := newNode(t, &brokertest.Recorder{}).(*Broker)
		b := newNode(t, &brokertest.Recorder{}).(*Broker)
		if err := a.PutRecord("revocations", []byte("r1"), time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		got, err := b.Records("revocations")
		if err != nil || len(got) != 1 || string(got[0]) != "r1" {
			t.Fatalf("records %q %v, want r1", got, err)
		}
	})
}

// Herald's broker works as a Redis user limited to the ACL that
// docs/scaling.md gives; a wrong password, a prefix outside the ACL and a
// database without +select say so, with the hint that fixes them.
func TestRedisACL(t *testing.T) {
	t.Parallel()
	srv := brokertest.StartRedis(t)
	acl := documentedACL(t)
	setACL(t, acl, srv)
	t.Run("AsTheDocumentedUser", func(t *testing.T) { runAsACLUser(t, srv.Addr(), nil) })
	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		const wrong = "not-the-pw-9f3a"
		_, err := waitHealthSays(t, Options{Address: srv.Addr(), User: "herald", Password: wrong, IOTimeout: time.Second},
			"WRONGPASS", "check broker.redis.user and broker.redis.password")
		if strings.Contains(err.Error(), wrong) {
			t.Fatalf("the error quotes the password: %v", err)
		}
	})
	t.Run("PrefixOutsideTheACL", func(t *testing.T) {
		t.Parallel()
		// Connected as the user, but its PUB/SUB channels and keys are
		// not the user's: Health names the connection that could not
		// subscribe, and a publication is refused, each with the hint.
		b, _ := waitHealthSays(t, Options{Address: srv.Addr(), User: "herald", Password: aclPassword, Prefix: "other", IOTimeout: time.Second},
			"PUB/SUB connection", "NOPERM", "lacks a permission Herald needs")
		_, err := b.Publish(&broker.Publication{Channel: "c", Data: []byte("x")}, broker.PublishOptions{HistorySize: 10, HistoryTTL: time.Minute})
		if !errors.Is(err, broker.ErrUnavailable) || !strings.Contains(err.Error(), "lacks a permission Herald needs") {
			t.Fatalf("publish outside the ACL: %v, want ErrUnavailable with the hint", err)
		}
	})
	t.Run("DatabaseNeedsSelect", func(t *testing.T) {
		t.Parallel()
		setACL(t, append([]string{"ACL", "SETUSER", "herald-db"}, append(acl[3:], "+select")...), srv)
		ok := Options{Address: srv.Addr(), User: "herald-db", Password: aclPassword, Prefix: "herald.db", DB: 2, IOTimeout: time.Second}
		b, err := New(ok, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if err := b.Run("node-1", &brokertest.Recorder{}); err != nil {
			t.Fatal(err)
		}
		brokertest.Eventually(t, 10*time.Second, b.Health)
		// Without +select, the database cannot be chosen.
		waitHealthSays(t, Options{Address: srv.Addr(), User: "herald", Password: aclPassword, Prefix: "herald.db", DB: 2, IOTimeout: time.Second},
			"NOPERM", "select", "lacks a permission Herald needs")
	})
	t.Run("NoPassword", func(t *testing.T) {
		t.Parallel()
		locked := brokertest.StartRedis(t)
		if _, err := locked.Call("CONFIG", "SET", "requirepass", aclPassword); err != nil {
			t.Fatal(err)
		}
		waitHealthSays(t, Options{Address: locked.Addr(), IOTimeout: time.Second}, "NOAUTH", "set broker.redis.password")
	})
}

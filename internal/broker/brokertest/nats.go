package brokertest

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATSServer is a private nats-server run in the test process on a free
// loopback port, stopped when the test ends.
type NATSServer struct {
	Port int
	srv  *server.Server
}

// StartNATS starts a NATS server.
func StartNATS(t testing.TB) *NATSServer {
	t.Helper()
	n := &NATSServer{Port: freePort(t)}
	n.start(t)
	t.Cleanup(n.Stop)
	return n
}

func (n *NATSServer) start(t testing.TB) {
	t.Helper()
	var err error
	for range 50 {
		n.srv, err = server.NewServer(&server.Options{Host: "127.0.0.1", Port: n.Port, NoLog: true, NoSigs: true})
		if err != nil {
			t.Fatalf("nats-server: %v", err)
		}
		go n.srv.Start()
		if n.srv.ReadyForConnections(5 * time.Second) {
			return
		}
		n.srv.Shutdown()
		time.Sleep(100 * time.Millisecond) // the port may still be held
	}
	t.Fatalf("nats-server did not start on port %d", n.Port)
}

// URL is the server's client URL.
func (n *NATSServer) URL() string { return n.srv.ClientURL() }

// Stop shuts the server down.
func (n *NATSServer) Stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	}
}

// Restart starts a new server on the same port.
func (n *NATSServer) Restart(t testing.TB) {
	t.Helper()
	n.Stop()
	n.start(t)
}

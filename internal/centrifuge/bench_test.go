package centrifuge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/heraldhub/herald/internal/testutil"
)

// BenchmarkConnectHS256 is the whole connect path over loopback: WebSocket
// upgrade, connect command with an HS256 token, reply, close. The client
// runs in the same process, so the time includes both sides.
func BenchmarkConnectHS256(b *testing.B) {
	cfg := testutil.Config()
	cfg.LogLevel = "warn"
	cfg.Client.PingInterval = 0
	srv := testutil.Start(b, cfg)
	frame := []byte(fmt.Sprintf(`{"id":1,"connect":{"token":%q}}`, testutil.UserToken(b, "bench-user")))
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		conn, _, err := d.Dial(srv.WSURL(), nil)
		if err != nil {
			b.Fatal(err)
		}
		if err := conn.WriteMessage(websocket.TextMessage, frame); err != nil {
			b.Fatal(err)
		}
		if _, data, err := conn.ReadMessage(); err != nil || data[2] != 'i' {
			b.Fatalf("connect reply %s %v", data, err)
		}
		conn.Close()
	}
}

package main

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

// The Action Cable transport: each connection is a WebSocket to /cable
// speaking actioncable-v1-json, identified by an AnyCable token (the ext
// claim) in the jid query parameter, subscribed to the channel as a public
// $pubsub stream; publications go through /api/publish, as for -transport ws.

const cablePath = "/cable"

// cableConfig is the configuration section the Action Cable runs add.
func cableConfig() string {
	return `actioncable:
  enabled: true
  jwt:
    secret: ` + hmacSecret + `
  streams:
    public: true
`
}

// makeCableTokens signs one AnyCable token per connection.
func makeCableTokens(n int, ttl time.Duration) ([]string, error) {
	exp := time.Now().Add(ttl).Unix()
	out := make([]string, n)
	for i := range out {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"ext": `{"user_id":"user` + strconv.Itoa(i) + `"}`, "exp": exp})
		s, err := t.SignedString([]byte(hmacSecret))
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

var (
	cableWelcome = []byte(`{"type":"welcome"`)
	cablePing    = []byte(`{"type":"ping"`)
	cableConfirm = []byte(`{"type":"confirm_subscription"`)
	keyMessage   = []byte(`"message":`)
)

// connectCable dials, waits for the welcome, subscribes and waits for the
// confirm: what @rails/actioncable does.
func connectCable(base, token, channel string, idx int, rs *runState) (*client, error) {
	d := *dialer
	d.Subprotocols = []string{"actioncable-v1-json", "actioncable-unsupported"}
	ws, _, err := d.Dial("ws"+base[len("http"):]+cablePath+"?jid="+token, nil)
	if err != nil {
		return nil, err
	}
	c := &client{idx: idx, ws: ws, cable: true, run: rs, done: make(chan struct{}), buf: make([]byte, 0, 512)}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.awaitCable(cableWelcome); err != nil {
		ws.Close()
		return nil, fmt.Errorf("welcome: %w", err)
	}
	id := `{"channel":"$pubsub","stream_name":` + strconv.Quote(channel) + `}`
	cmd := []byte(`{"command":"subscribe","identifier":` + strconv.Quote(id) + `}`)
	if err := ws.WriteMessage(websocket.TextMessage, cmd); err != nil {
		ws.Close()
		return nil, err
	}
	if err := c.awaitCable(cableConfirm); err != nil {
		ws.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c, nil
}

// awaitCable reads until a message starting with prefix.
func (c *client) awaitCable(prefix []byte) error {
	for {
		data, err := c.readFrame()
		if err != nil {
			return err
		}
		switch {
		case bytes.HasPrefix(data, prefix):
			return nil
		case bytes.HasPrefix(data, []byte(`{"type":"disconnect"`)), bytes.HasPrefix(data, []byte(`{"type":"reject_subscription"`)):
			return fmt.Errorf("refused: %s", data)
		}
	}
}

// handleCableFrame handles one Action Cable message; it reports whether it
// was a measured publication.
func (c *client) handleCableFrame(data []byte, now int64) bool {
	if bytes.HasPrefix(data, cablePing) {
		c.run.pings.Add(1)
		return false
	}
	p := bytes.Index(data, keyMessage)
	if p < 0 {
		c.run.other.Add(1)
		return false
	}
	t, seq, ok := parseData(data[p+len(keyMessage):])
	if !ok {
		c.run.other.Add(1)
		return false
	}
	return c.record(t, seq, now)
}

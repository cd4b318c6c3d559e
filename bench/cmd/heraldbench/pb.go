package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/centrifugal/protocol"
	"github.com/gorilla/websocket"
)

// The Protobuf mode (-transport pb): the Centrifugo protocol in Protobuf
// over WebSocket, as the Protobuf builds of the SDKs speak it. Publications
// are the same JSON as in ws mode, carried as raw bytes inside each record,
// so the client finds t and seq without decoding the record.

var pbPong = []byte{0} // the empty command

// connectPB dials with the centrifuge-protobuf subprotocol, connects and subscribes.
func connectPB(wsURL, token, channel string, idx int, rs *runState) (*client, error) {
	d := *dialer
	d.Subprotocols = []string{"centrifuge-protobuf"}
	ws, _, err := d.Dial(wsURL, nil)
	if err != nil {
		return nil, err
	}
	c := &client{idx: idx, ws: ws, pb: true, run: rs, done: make(chan struct{}), buf: make([]byte, 0, 512)}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if err := c.pbCommand(&protocol.Command{Id: 1, Connect: &protocol.ConnectRequest{Token: token}}); err != nil {
		ws.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := c.pbCommand(&protocol.Command{Id: 2, Subscribe: &protocol.SubscribeRequest{Channel: channel}}); err != nil {
		ws.Close()
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c, nil
}

// pbCommand writes one command and reads until its reply arrives.
func (c *client) pbCommand(cmd *protocol.Command) error {
	b, err := cmd.MarshalCF()
	if err != nil {
		return err
	}
	if err := c.ws.WriteMessage(websocket.BinaryMessage, append(binary.AppendUvarint(nil, uint64(len(b))), b...)); err != nil {
		return err
	}
	for {
		data, err := c.readFrame()
		if err != nil {
			return err
		}
		for len(data) > 0 {
			rec, rest, ok := nextRecord(data)
			if !ok {
				return errors.New("bad Protobuf record")
			}
			data = rest
			if len(rec) == 0 {
				if err := c.ws.WriteMessage(websocket.BinaryMessage, pbPong); err != nil {
					return err
				}
				continue
			}
			var r protocol.Reply
			if err := r.UnmarshalCF(rec); err != nil {
				return err
			}
			if r.Id == cmd.Id {
				if r.Error != nil {
					return fmt.Errorf("refused: %d %s", r.Error.Code, r.Error.Message)
				}
				return nil
			}
		}
	}
}

// nextRecord splits the first varint-delimited record off data.
func nextRecord(data []byte) (rec, rest []byte, ok bool) {
	n, k := binary.Uvarint(data)
	if k <= 0 || uint64(len(data)-k) < n {
		return nil, nil, false
	}
	return data[k : k+int(n)], data[k+int(n):], true
}

// readPB is readLoop for Protobuf connections.
func (c *client) readPB() {
	defer close(c.done)
	for {
		data, err := c.readFrame()
		now := time.Now().UnixNano()
		if err != nil {
			c.ended(err)
			return
		}
		pubs := 0
		for len(data) > 0 {
			rec, rest, ok := nextRecord(data)
			if !ok {
				c.run.other.Add(1)
				break
			}
			data = rest
			if len(rec) == 0 {
				c.run.pings.Add(1)
				_ = c.ws.WriteMessage(websocket.BinaryMessage, pbPong)
				continue
			}
			t, seq, ok := parseData(rec)
			if !ok {
				c.run.other.Add(1)
				continue
			}
			if c.record(t, seq, now) {
				pubs++
			}
		}
		if pubs > 0 {
			c.run.pubFrames.Add(1)
		}
	}
}

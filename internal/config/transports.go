package config

import "fmt"

// Transports switches the Centrifugo transports other than the
// bidirectional WebSocket on or off, with their limits. Each is off by
// default and on with --dev.
type Transports struct {
	HTTPStream    StreamTransport `yaml:"http_stream" doc:"bidirectional emulation over HTTP streaming: POST /connection/http_stream (the SDKs' fallback when WebSocket is blocked)"`
	SSE           StreamTransport `yaml:"sse" doc:"bidirectional emulation over Server-Sent Events: GET|POST /connection/sse"`
	Emulation     Emulation       `yaml:"emulation" doc:"POST /emulation: the commands of http_stream and sse sessions"`
	UniWebSocket  UniWebSocket    `yaml:"uni_websocket" doc:"unidirectional WebSocket: GET /connection/uni_websocket"`
	UniSSE        StreamTransport `yaml:"uni_sse" doc:"unidirectional Server-Sent Events: GET|POST /connection/uni_sse"`
	UniHTTPStream StreamTransport `yaml:"uni_http_stream" doc:"unidirectional HTTP streaming: POST /connection/uni_http_stream"`
}

// StreamTransport is a transport whose connect request arrives in one HTTP
// request.
type StreamTransport struct {
	Enabled            bool `yaml:"enabled" doc:"serve this transport"`
	MaxRequestBodySize int  `yaml:"max_request_body_size" doc:"largest request body in bytes (413 above it)"`
}

// Emulation holds the options of POST /emulation.
type Emulation struct {
	MaxRequestBodySize int `yaml:"max_request_body_size" doc:"largest /emulation body in bytes (413 above it)"`
}

// UniWebSocket holds the options of the unidirectional WebSocket.
type UniWebSocket struct {
	Enabled               bool `yaml:"enabled" doc:"serve this transport"`
	MessageSizeLimit      int  `yaml:"message_size_limit" doc:"largest message (the connect request) a client may send (close 1009)"`
	JoinPushMessages      bool `yaml:"join_push_messages" doc:"join pushes queued together into one text frame, separated by newlines (one push per frame when off)"`
	DisableDisconnectPush bool `yaml:"disable_disconnect_push" doc:"close with the code in the close frame only, without a disconnect push before it"`
}

func defaultTransports() Transports {
	const limit = 65536
	return Transports{
		HTTPStream:    StreamTransport{MaxRequestBodySize: limit},
		SSE:           StreamTransport{MaxRequestBodySize: limit},
		Emulation:     Emulation{MaxRequestBodySize: limit},
		UniWebSocket:  UniWebSocket{MessageSizeLimit: limit},
		UniSSE:        StreamTransport{MaxRequestBodySize: limit},
		UniHTTPStream: StreamTransport{MaxRequestBodySize: limit},
	}
}

// applyTransportDevDefaults switches every transport on.
func (c *Config) applyTransportDevDefaults() {
	t := &c.Transports
	t.HTTPStream.Enabled, t.SSE.Enabled = true, true
	t.UniWebSocket.Enabled, t.UniSSE.Enabled, t.UniHTTPStream.Enabled = true, true, true
}

func (t *Transports) validate() Problems {
	var ps Problems
	limit := func(key string, v int) {
		if v < 1024 {
			ps = append(ps, Problem{Key: key, Msg: fmt.Sprintf("must be at least 1024 (got %d)", v)})
		}
	}
	limit("http_stream.max_request_body_size", t.HTTPStream.MaxRequestBodySize)
	limit("sse.max_request_body_size", t.SSE.MaxRequestBodySize)
	limit("emulation.max_request_body_size", t.Emulation.MaxRequestBodySize)
	limit("uni_websocket.message_size_limit", t.UniWebSocket.MessageSizeLimit)
	limit("uni_sse.max_request_body_size", t.UniSSE.MaxRequestBodySize)
	limit("uni_http_stream.max_request_body_size", t.UniHTTPStream.MaxRequestBodySize)
	return ps
}

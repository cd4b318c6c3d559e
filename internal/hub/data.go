package hub

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/heraldhub/herald/internal/broker"
)

// NormalizeData checks that publication data is JSON in valid UTF-8 and
// compacts it, which also removes raw newlines that would break the
// protocol's line framing.
func NormalizeData(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, errors.New("publication data is empty")
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("publication data is not valid JSON: %v", err)
	}
	if at := InvalidUTF8At(raw); at >= 0 {
		return nil, fmt.Errorf("publication data is not valid UTF-8 (first invalid byte at offset %d)", at)
	}
	return buf.Bytes(), nil
}

// JSONData returns a publication's data for a JSON wire: JSON as it is
// (compacted when it holds raw newlines, which line-framed protocols cannot
// carry), text (a Mercure update that is not JSON) as a JSON string, and
// binary data (from a Protobuf client) as a JSON string of its base64.
func JSONData(p *broker.Publication) json.RawMessage {
	switch p.Encoding {
	case broker.EncodingJSON:
		if bytes.IndexByte(p.Data, '\n') < 0 && bytes.IndexByte(p.Data, '\r') < 0 {
			return p.Data
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, p.Data); err == nil {
			return buf.Bytes()
		}
		b, _ := json.Marshal(string(p.Data))
		return b
	case broker.EncodingBinary:
		b, _ := json.Marshal(base64.StdEncoding.EncodeToString(p.Data))
		return b
	}
	b, _ := json.Marshal(string(p.Data))
	return b
}

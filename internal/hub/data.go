package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

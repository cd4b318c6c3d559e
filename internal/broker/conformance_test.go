package broker_test

import (
	"testing"

	"github.com/heraldhub/herald/internal/broker"
	"github.com/heraldhub/herald/internal/broker/brokertest"
)

// TestMemoryConformance runs the single-node behaviour every broker shares
// against the memory broker, the reference the others are held to.
func TestMemoryConformance(t *testing.T) {
	brokertest.RunSingle(t, func(t *testing.T) brokertest.NewNode {
		return func(t *testing.T, h broker.Handler) brokertest.Node {
			m := broker.NewMemory()
			if err := m.Run("node-1", h); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = m.Close() })
			return m
		}
	})
}

package inproc_test

import (
	"testing"

	"github.com/uberpopug/ates/services/bus"
	"github.com/uberpopug/ates/services/bus/bustest"
	"github.com/uberpopug/ates/services/bus/inproc"
)

func TestContract(t *testing.T) {
	t.Parallel()
	bustest.Run(t, func(t *testing.T) bus.Transport {
		b := inproc.New()
		t.Cleanup(func() {
			if err := b.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return b
	})
}

package ids_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/uberpopug/ates/services/ids"
)

// Ids made one after another are version 7 and sort in the order they were made, as strings
// (how the outbox's unique event_id index compares them) and as bytes (uuid columns).
func TestNewIsTimeOrdered(t *testing.T) {
	prev := ids.New()
	for range 10_000 {
		id := ids.New()
		if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
			t.Fatalf("%s is version %d, variant %v; want an RFC 9562 version 7 uuid", id, id.Version(), id.Variant())
		}
		if id.String() <= prev.String() {
			t.Fatalf("%s made after %s sorts before it", id, prev)
		}
		prev = id
	}
	if s := ids.NewString(); uuid.MustParse(s).Version() != 7 {
		t.Errorf("NewString() = %s, want a version 7 uuid", s)
	}
}

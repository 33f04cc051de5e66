package errs

import (
	"reflect"
	"testing"
)

// TestInvalidFields: every refusal is listed in Meta["fields"], in order; Field and Message
// are the first's; nothing refused is nil.
func TestInvalidFields(t *testing.T) {
	t.Parallel()
	if err := InvalidFields(); err != nil {
		t.Fatalf("InvalidFields() = %v, want nil", err)
	}
	if err := InvalidFields(nil, nil); err != nil {
		t.Fatalf("InvalidFields(nil, nil) = %v, want nil", err)
	}
	err := InvalidFields(nil, InvalidField("username", "bad username"), nil, InvalidField("email", "bad email"))
	e, ok := As(err)
	if !ok || e.Code != Invalid || e.Field != "username" || e.Message != "bad username" {
		t.Fatalf("InvalidFields = %#v", err)
	}
	want := []map[string]string{{"field": "username", "message": "bad username"}, {"field": "email", "message": "bad email"}}
	if got := e.Meta["fields"]; !reflect.DeepEqual(got, want) {
		t.Fatalf("Meta[fields] = %#v, want %#v", got, want)
	}
}

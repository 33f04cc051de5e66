package errs

// InvalidFields joins the refusals of one input's fields into one BAD_USER_INPUT error, so a
// form can show every problem at once: Field and Message are the first refusal's (clients that
// read one field keep working), and Meta["fields"] lists every refusal in input order as
// {"field": …, "message": …}. It returns nil when there is none; nil entries are skipped.
func InvalidFields(list ...*Error) error {
	var first *Error
	fields := make([]map[string]string, 0, len(list))
	for _, e := range list {
		if e == nil {
			continue
		}
		if first == nil {
			first = e
		}
		fields = append(fields, map[string]string{"field": e.Field, "message": e.Message})
	}
	if first == nil {
		return nil
	}
	return &Error{Code: Invalid, Field: first.Field, Message: first.Message, Meta: map[string]any{"fields": fields}}
}

package event

// ParseGeneral exposes the general validator to the tests comparing the fast path with it.
func (r *Registry) ParseGeneral(raw []byte) (Envelope, error) { return r.parseGeneral(raw) }

// ParseFast exposes the fast path to the tests comparing it with the general validator.
func (r *Registry) ParseFast(raw []byte) (Envelope, bool) { return r.parseFast(raw) }

// FastPathMissing lists the registered schemas without a fast tree.
func (r *Registry) FastPathMissing() []string {
	var missing []string
	if r.fastEnvelope == nil {
		missing = append(missing, "envelope")
	}
	for k := range r.data {
		if r.fastData[k] == nil {
			missing = append(missing, k)
		}
	}
	return missing
}

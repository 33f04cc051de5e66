// Package contract is the published language between the contexts: the name and the data of
// every event, one Go type per event name and version, matching the JSON Schemas of the
// registry (services/event/schemas). Producers fill these types; consumers decode into them.
// It holds no behaviour beyond reading old versions (R-EVT-3).
package contract

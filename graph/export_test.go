package graph

// MaxSubscriberLag exposes maxSubscriberLag to the hub's tests.
const MaxSubscriberLag = maxSubscriberLag

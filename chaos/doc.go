// Package chaos is aTES's fault suite (SPEC R-REL-1…4): it runs the production topology as
// separate processes — two gateways, a worker per context and a second accounting worker, on a
// PostgreSQL cluster, a RabbitMQ node and an SMTP server of its own — under the load of a few
// dozen popugs, kills and restarts processes, the broker and the database one after another,
// and then checks in the databases and in the clients' logs that no money was lost or doubled,
// every acknowledged request took effect and no refused one did, and no live push was lost
// without a RESYNC.
//
// It is a test, run by `make chaos` (ATES_CHAOS=1); `make test` skips it. docs/reliability.md
// describes what it checks and shows a run's figures.
package chaos

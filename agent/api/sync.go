package api

// Syncer is the API's view of the sync sender (agent/outbox), Deps.Sync.
// With one, enrollments and deletions write outbox jobs in the same
// transaction as their local effect, uploads keep their image files for
// those jobs, and /status reports the sender's state.
type Syncer interface {
	// Notify wakes the sender after a job was written; it never blocks.
	Notify()
	// Status is the sender's state, /status's "Sync" field.
	Status() any
}

// Package outbox delivers the sync outbox (store's outbox buckets) to a
// central BWS: enrollments and deletions made on this device, in order per
// class, at least once, made idempotent by the sender (see Sender).
//
// The enroll and deleteclass paths write a job in the same bbolt
// transaction as their local effect (store.DB.AddTemplatesWithOutbox,
// store.DB.DeleteClassWithOutbox) and call Sender.Notify. The Sender is the
// one loop that reads the outbox; it calls the centre through a Client (a
// BWS 2 extension endpoint, NewBWS2, or BWS 3 REST, NewBWS3) for up to
// Config.Concurrency classes at once, one job per class at a time.
//
// Errors from the centre are classified (DeliveryError): 4xx answers and
// BWS error codes are permanent and move the job to the dead letters, where
// an operator sees it (List) and retries (Retry) or drops it (Drop); 5xx,
// 408, 429, network errors and timeouts are transient and retried with
// capped exponential backoff and jitter. 401 and 403 are transient too:
// they mean the agent's credentials or clock are wrong, which is a fault of
// the whole sender, not of one job, and dead-lettering every job for it
// would bury the real problem.
//
// Verification and identification results are not synced: BWS has no place
// for them centrally and replaying a verify would spend the person's tries.
// They stay in the local audit log.
package outbox

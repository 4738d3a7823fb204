// Package bws holds the value types of the BioID Web Service (BWS 2)
// extension contract and their parsers: Biometric Class IDs, the task flags
// and traits carried in BWS tokens, challenge-response sequences, and the
// data URLs clients upload as samples.
//
// Names, spellings and numeric values follow the contract exactly, because
// existing BWS clients parse them. The package does no I/O beyond reading a
// request body it is handed, and has no HTTP dependency: handlers map its
// errors to status codes (every parse error here is a client error, 400).
package bws

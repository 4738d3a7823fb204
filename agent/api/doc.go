// Package api serves the BioID Web Service (BWS 2) extension contract on the
// agent's listener and holds the biometric service behind it: tokens, sample
// uploads analysed at upload time, enrollment, verification, identification,
// liveness, job results and the class calls. ../shared/bws-contract.md is the
// source of truth for every route, field name, code and status.
//
// The HTTP handlers are a thin layer over the Server's service methods
// (IssueToken, Upload, Perform, DeleteClass, Classes), which the admin socket,
// the CLI and capture sessions call directly, so every path runs the same
// code.
//
// What lives where:
//   - templates, token state (tries used, the /result answer) and the audit
//     log are in the store, so they survive a restart;
//   - uploaded samples are held per token in memory only, as analysed
//     measurements (landmarks, pose, template, PAD score, and the liveness
//     checker's small grey face patch for motion tracking — never the
//     uploaded image), bounded per token and in total, never written to
//     disk, and dropped when a biometric call consumes them, when the token
//     expires, and on Close;
//   - the 1:N galleries are in memory, loaded from the store by New and kept
//     in step with every enrollment and deletion;
//   - lockouts (Basic-auth brute force, verify failures per class) are in
//     memory: a restart clears them.
//
// Security on a localhost listener: requests must name an allowed Host (DNS
// rebinding), browser requests from origins that are not allowed are refused
// and get no CORS headers, bodies are bounded before they are read, image
// dimensions are checked before decoding, and a panic in a handler becomes a
// 500 with {"Message":…} instead of a dead daemon.
package api

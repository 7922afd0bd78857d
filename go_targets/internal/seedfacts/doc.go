// Package seedfacts holds, as tests, the seed article's claims about Go
// arrays and maps that no load run can show because the compiler or the
// language settles them (NOTES.md §3.1, §3.2, §4.2). Each test type-checks
// or runs the smallest program that decides the claim, so a change in Go
// that made a claim true would fail it here. The package has no code.
package seedfacts

// Package bpf owns weft's kernel side: the C programs under c/, the objects
// bpf2go builds from them (committed, so go build needs no clang), the
// feature probe that says in one line what a machine lacks, attaching each
// probe from one table, and the ring buffer reader that decodes events in
// place. It knows no L7 protocol.
package bpf

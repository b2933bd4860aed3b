// Package postgres rebuilds PostgreSQL wire-protocol (v3) operations from
// the two byte streams of one TCP connection, as the kernel saw them move.
//
// Frames are cut here, over the reassembled stream, so that message bodies
// weft has no use for (DataRow, CopyData, RowDescription, Bind parameters)
// are stepped over by length, captured or not, and never buffered. The
// bodies it reads are decoded with github.com/jackc/pgx/v5/pgproto3 (the
// startup packet, Query, Parse, Close, CommandComplete, ErrorResponse,
// NoticeResponse), except where pgproto3 would read too much or allocate
// on the hot path: the names that start a Bind (never its parameter
// values), and the portal names of Execute and Describe, are read in
// place. The backend answers in order, so operations wait in a bounded
// FIFO per connection for the messages that complete them.
//
// Bytes lost in a message header cost the framing: the direction then
// looks for a run of well-formed messages to start again from, and the
// operations whose answers went with the lost bytes are emitted with what
// is known (their statement; rows returned unknown), so spans after a
// loss stay paired with the right statements.
//
// One exchange is emitted per simple-protocol Query message (whatever the
// number of statements in it) and per extended-protocol Execute; a Parse,
// Bind or Describe the server rejects is an exchange too, so a statement
// that fails to prepare is not lost. Statement text is remembered per
// connection by prepared-statement name, within bounds. Nothing from a
// DataRow or a Bind parameter is ever read.
package postgres

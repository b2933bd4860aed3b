// Package recording reads and writes the recorded-connection fixtures
// (.rec) the protocol parsers are tested on, and feeds them as
// conn.Segments in the ways the tests need.
//
// A recording is one real TCP connection as a loopback proxy (Proxy) saw
// it: every read the proxy made, in the order the reads returned, so
// segment boundaries are the real ones. The file format is
//
//	> LEN\n   LEN bytes the client sent (toward the server), then \n
//	< LEN\n   LEN bytes the server sent (toward the client), then \n
//
// and so on to the end of the file. Nothing else is in it.
//
// A test cuts a recording into segments (Cut) with a split (Whole,
// Bytewise, RandomSplit, Pieces or its own) and, optionally, bytes lost to
// skips (a Mask: CaptureLimit, RandomLoss, or its own), and feeds them
// with Feed. The segments carry synthetic timing and sequence numbers
// (ChunkStart, ChunkEnd, ChunkTID, ISNToServer, ISNToClient) that an
// expected exchange can be computed from.
package recording

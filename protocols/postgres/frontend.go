package postgres

import (
	"encoding/binary"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
)

// run is the extended-protocol messages (Parse, Bind, Describe) leading to
// the next Execute: the Execute's exchange starts where its run did.
type run struct {
	open  bool
	start int64
	seq   uint32
	tid   uint32
	cause conn.Cause
}

// startupMsg handles an untyped startup-phase message: the startup
// packet, SSLRequest, GSSENCRequest or CancelRequest.
func (p *Parser) startupMsg(d conn.Direction, m *msg) {
	if len(m.body) < 4 {
		p.stats.Malformed.Add(1)
		p.off()
		return
	}
	switch binary.BigEndian.Uint32(m.body) {
	case codeSSL, codeGSSENC:
		p.answers++ // answered with one byte; the startup packet follows
	case codeCancel:
		p.off() // a connection that only carries a cancel
	case codeProtocol30, codeProtocol32:
		p.sides[d].st = stHeader
		if m.cut || p.dec.startup.Decode(m.body) != nil {
			p.stats.Malformed.Add(1)
		} else {
			params := p.dec.startup.Parameters
			p.user, p.db, p.app = validUTF8(params["user"]), validUTF8(params["database"]), validUTF8(params["application_name"])
			if p.db == "" {
				p.db = p.user // the server's default
			}
			p.dec.startup.Parameters = nil
		}
		p.push(op{kind: opStartup, start: m.start, seq: m.seq, tid: m.tid, cause: m.cause})
	default:
		// Protocol 2 or something else: not followed.
		p.stats.Malformed.Add(1)
		p.off()
	}
}

// clientMsg handles a typed message from the client.
func (p *Parser) clientMsg(d conn.Direction, m *msg) {
	switch m.typ {
	case fQuery:
		p.run = run{}
		p.push(op{kind: opQuery, st: p.queryStmt(m), start: m.start, seq: m.seq, tid: m.tid, cause: m.cause})
	case fParse:
		name, st := p.parseStmt(m)
		if n := p.stmts.parse(name, st, p.opts.MaxStatements, p.opts.MaxStatementBytes); n > 0 {
			p.stats.Evicted.Add(uint64(n))
		}
		p.pushRun(m, opParse, st)
	case fBind:
		var st stmt
		if portal, name, ok := bindNames(m.body); ok {
			st = p.stmts.stmt(name)
			p.stmts.bind(portal, st)
		} else {
			p.stmts.bind(nil, stmt{})
		}
		p.pushRun(m, opBind, st)
	case fDescribe:
		var st stmt
		if len(m.body) > 1 {
			if name, _, ok := cstr(m.body[1:]); ok {
				if m.body[0] == 'S' {
					st = p.stmts.stmt(name)
				} else {
					st = p.stmts.executes(name)
				}
			}
		}
		p.pushRun(m, opDescribe, st)
	case fExecute:
		// Execute carries a portal name and a row limit: checked and read
		// in place, since pgproto3's Decode copies the name, an
		// allocation per execution on the hottest path.
		var st stmt
		if !m.cut && validFrontend(fExecute, m.body) {
			portal, _, _ := cstr(m.body)
			st = p.stmts.executes(portal)
		} else {
			p.stats.Malformed.Add(1)
		}
		if !st.known {
			p.stats.Unprepared.Add(1)
		}
		p.pushRun(m, opExecute, st)
		p.run = run{}
	case fClose:
		if !m.cut && p.dec.close.Decode(m.body) == nil {
			p.stmts.close(p.dec.close.ObjectType, []byte(p.dec.close.Name))
		} else {
			p.stats.Malformed.Add(1)
		}
		p.push(op{kind: opClose, start: m.start, seq: m.seq, tid: m.tid, cause: m.cause})
	case fSync:
		p.run = run{}
		p.push(op{kind: opSync, start: m.start, seq: m.seq, tid: m.tid, cause: m.cause})
	case fFunctionCall:
		p.run = run{}
		p.push(op{kind: opFunction, start: m.start, seq: m.seq, tid: m.tid, cause: m.cause})
	}
	// Flush, Terminate, CopyData, CopyDone, CopyFail and the password
	// messages have no answer of their own.
}

// pushRun queues an extended-protocol op, timed from its run's start.
func (p *Parser) pushRun(m *msg, k opKind, st stmt) {
	if !p.run.open {
		p.run = run{open: true, start: m.start, seq: m.seq, tid: m.tid, cause: m.cause}
	}
	p.push(op{kind: k, st: st, start: p.run.start, seq: p.run.seq, tid: p.run.tid, cause: p.run.cause})
}

// push queues o. When the queue is full, answers can no longer be paired:
// what waits is dropped, and a gap absorbs answers up to the next
// ReadyForQuery.
func (p *Parser) push(o op) {
	if p.q.push(o, p.opts.MaxPending) {
		return
	}
	p.stats.Overflows.Add(uint64(p.q.clear()) + 1)
	p.res = result{}
	p.q.push(op{kind: opGap}, p.opts.MaxPending)
}

// queryStmt returns the statement of a Query message.
func (p *Parser) queryStmt(m *msg) stmt {
	text := m.body
	if !m.cut {
		if len(text) > 0 && text[len(text)-1] == 0 && string(text[:len(text)-1]) == p.lastQuery.raw && p.lastQuery.known && !p.lastQuery.cut {
			return p.lastQuery
		}
		if p.dec.query.Decode(text) != nil {
			p.stats.Malformed.Add(1)
			return stmt{}
		}
		p.lastQuery = newStmt(p.dec.query.String, false)
		p.dec.query.String = ""
		return p.lastQuery
	}
	// Longer than MaxQueryBytes, or partly uncaptured: keep the prefix.
	p.lastQuery = newStmt(string(cutText(text, p.opts.MaxQueryBytes)), true)
	return p.lastQuery
}

// parseStmt returns the name and statement of a Parse message.
func (p *Parser) parseStmt(m *msg) (name []byte, st stmt) {
	name, rest, ok := cstr(m.body)
	if !ok {
		p.stats.Malformed.Add(1)
		return nil, stmt{}
	}
	if m.cut {
		return name, newStmt(string(cutText(rest, p.opts.MaxQueryBytes)), true)
	}
	text, _, ok := cstr(rest)
	if !ok {
		p.stats.Malformed.Add(1)
		return name, stmt{}
	}
	// A client that re-parses the unnamed statement with the same text
	// (libpq's PQexecParams does, every time) costs nothing.
	if len(name) == 0 && p.stmts.unnamed.known && !p.stmts.unnamed.cut && string(text) == p.stmts.unnamed.raw {
		return name, p.stmts.unnamed
	}
	if p.dec.parse.Decode(m.body) != nil {
		p.stats.Malformed.Add(1)
		return name, stmt{}
	}
	st = newStmt(p.dec.parse.Query, false)
	p.dec.parse = pgproto3.Parse{}
	return name, st
}

// bindNames reads the portal and statement names that start a Bind. The
// rest of a Bind, its parameter values, is never read: it is exactly what
// weft must not look at, and it can be megabytes.
func bindNames(b []byte) (portal, stmt []byte, ok bool) {
	portal, rest, ok := cstr(b)
	if !ok || len(portal) > maxNameLen {
		return nil, nil, false
	}
	stmt, _, ok = cstr(rest)
	if !ok || len(stmt) > maxNameLen {
		return nil, nil, false
	}
	return portal, stmt, true
}

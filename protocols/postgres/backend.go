package postgres

import (
	"bytes"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/weftrace/weft/conn"
	"github.com/weftrace/weft/protocols"
)

// result is what the server said so far about the oldest pending op.
type result struct {
	rows      int64 // DataRow messages
	rowsKnown bool  // the statement returns rows (RowDescription, DataRow, a SELECT tag)
	results   int   // CommandComplete and EmptyQueryResponse messages (simple query)
	verb      string
	sameVerb  bool  // every result had verb
	count     int64 // the last command tag's row count
	hasCount  bool
	copyOut   bool
	sqlstate  string
	failed    bool
	lost      bool   // some of the answer went with uncaptured bytes
	tid       uint32 // thread that moved the first answering message
}

// outcome says how an op ended.
type outcome uint8

const (
	outcomeDone outcome = iota // answered
	outcomeNone                // the connection ended first
)

// Which ops a server message can answer, as bit masks of opKind.
const (
	forQuery    = 1 << opQuery
	forParse    = 1 << opParse
	forBind     = 1 << opBind
	forDescribe = 1 << opDescribe
	forExecute  = 1 << opExecute
	forClose    = 1 << opClose
	forRows     = forQuery | forExecute
)

// serverMsg handles a message from the server: it answers the oldest op.
func (p *Parser) serverMsg(m *msg) {
	switch m.typ {
	case bAuth, bParamStatus, bBackendKeyData, bNotification, bNegotiateVersion, bCopyData, bCopyDone, bFunctionResult:
		return // part of the startup, asynchronous, or nothing to note
	}
	h := p.q.front()
	if h == nil || m.moved < h.start {
		// Nothing waits, or the oldest op was sent after this message
		// moved: it answers something weft did not see.
		p.stats.Orphans.Add(1)
		return
	}
	if p.res.tid == 0 {
		p.res.tid = m.tid
	}
	if h.kind == opGap {
		p.gapAnswer(m, h)
		return
	}
	switch m.typ {
	case bReadyForQuery:
		p.ready(m)
	case bErrorResponse:
		p.failed(m, h)
	case bNoticeResponse:
		if code, warning := p.notice(m); warning && (h.kind == opQuery || h.kind == opExecute) && p.res.sqlstate == "" {
			p.res.sqlstate = code
		}
	case bParseComplete:
		p.complete(forParse)
	case bBindComplete:
		p.complete(forBind)
	case bCloseComplete:
		p.complete(forClose)
	case bParamDescription:
		p.answering(forDescribe)
	case bNoData:
		if p.answering(forDescribe) != nil {
			p.described = false
			p.complete(forDescribe)
		}
	case bRowDescription:
		switch h := p.answering(forDescribe | forQuery); {
		case h == nil:
		case h.kind == opDescribe:
			p.described = true
			p.complete(forDescribe)
		default:
			p.res.rowsKnown = true
		}
	case bDataRow:
		if p.answering(forRows) != nil {
			p.res.rows++
			p.res.rowsKnown = true
		}
	case bCommandComplete:
		if h := p.answering(forRows); h != nil {
			p.commandComplete(m, h)
		}
	case bEmptyQuery, bPortalSuspended:
		if h := p.answering(forRows); h != nil {
			p.res.results++
			if h.kind == opExecute {
				p.executed(m)
			}
		}
	case bCopyOutResponse:
		if p.answering(forRows) != nil {
			p.res.copyOut = true
		}
	case bCopyInResponse, bCopyBothResponse:
		p.answering(forRows) // the client's CopyData follows, then CommandComplete
	}
}

// answering returns the op a message answering one of kinds (a mask)
// belongs to: the oldest. Out of step after lost bytes, the answers to
// the ops before it in its group were lost: they are ended first. A
// message that fits no op puts the parser out of step; nil then.
func (p *Parser) answering(kinds int) *op {
	h := p.q.front()
	if kinds&(1<<h.kind) != 0 {
		return h
	}
	if p.respLost {
		for i := 1; i < p.q.n; i++ {
			o := p.q.at(i)
			if kinds&(1<<o.kind) != 0 {
				for range i {
					p.lostOp(p.q.pop(), p.respEnd)
				}
				p.res.lost = true
				return p.q.front()
			}
			if o.kind.endsGroup() {
				break
			}
		}
		return nil
	}
	p.stats.Desyncs.Add(1)
	p.respLost, p.res.lost = true, true
	return nil
}

// gapAnswer handles what the server says to client messages lost with
// uncaptured bytes. Executions still show in the answers: each command
// completion or error makes an exchange, of the statement bound in the
// run the loss hit when there was one, else of an unknown statement
// named by its command tag.
func (p *Parser) gapAnswer(m *msg, gap *op) {
	switch m.typ {
	case bReadyForQuery:
		p.ready(m)
		return
	case bDataRow:
		p.res.rows++
		p.res.rowsKnown = true
		return
	case bCommandComplete:
		p.commandComplete(m, gap)
	case bEmptyQuery, bPortalSuspended:
	case bErrorResponse:
		p.res.sqlstate, p.res.failed = p.errorCode(m), true
	default:
		return
	}
	x := op{kind: opExecute, st: gap.st, start: gap.start, seq: gap.seq, tid: gap.tid, cause: gap.cause}
	gap.st = stmt{} // later executions in the gap ran other statements
	p.stats.Unknown.Add(1)
	p.emit(&x, m.end, outcomeDone)
	p.res = result{}
}

// complete pops the oldest op, which the message answering kinds ended.
func (p *Parser) complete(kinds int) {
	if p.answering(kinds) != nil {
		p.q.pop()
		p.res = result{}
	}
}

// lostOp ends an op whose answer went with uncaptured bytes: queries and
// executions are emitted with what little is known.
func (p *Parser) lostOp(o op, end int64) {
	if o.kind == opQuery || o.kind == opExecute {
		p.res.lost = true
		p.emit(&o, end, outcomeDone)
	}
	p.res = result{}
}

// ready handles ReadyForQuery: the end of the oldest group of ops.
func (p *Parser) ready(m *msg) {
	lost := p.respLost
	p.respLost = false
	for p.q.n > 0 {
		o := p.q.pop()
		switch {
		case o.kind == opQuery:
			p.emit(&o, m.end, outcomeDone)
		case o.kind == opExecute && lost:
			p.lostOp(o, m.end)
		case o.kind == opExecute:
			// Never answered: the server skipped it after an error.
			p.stats.Skipped.Add(1)
		}
		p.res = result{}
		if o.kind.endsGroup() {
			return
		}
	}
}

// serverResync puts the ops in step with server bytes found again after a
// loss, which moved at t. They answer the newest group whose request
// moved before t (clients rarely pipeline past a Sync): the older groups
// were answered in the lost bytes.
func (p *Parser) serverResync(t int64) {
	newest := -1
	for i := range p.q.n {
		if p.q.at(i).start <= t {
			newest = i
		}
	}
	first := 0 // where newest's group starts
	for i := range newest {
		if p.q.at(i).kind.endsGroup() {
			first = i + 1
		}
	}
	for range first {
		p.lostOp(p.q.pop(), p.prevEnd) // answered before these bytes
	}
	p.respLost, p.res.lost = true, true
}

// failed handles ErrorResponse. A simple query fails as a whole at its
// ReadyForQuery; an extended-protocol message fails now (a statement that
// does not parse is an exchange too), and the server skips what follows
// up to Sync.
func (p *Parser) failed(m *msg, h *op) {
	code := p.errorCode(m)
	switch h.kind {
	case opQuery:
		if !p.res.failed {
			p.res.sqlstate, p.res.failed = code, true
		}
	case opParse, opBind, opDescribe, opExecute:
		o := p.q.pop()
		p.res.sqlstate, p.res.failed = code, true
		p.emit(&o, m.end, outcomeDone)
		p.res = result{}
	case opClose:
		p.q.pop()
		p.res = result{}
	case opSync:
		// An error at Sync (a deferred constraint at the implicit
		// commit) belongs to an Execute already emitted.
		p.stats.Orphans.Add(1)
	}
	// At startup (authentication failed) or after a FunctionCall:
	// nothing to emit.
}

// commandComplete handles CommandComplete: one statement's end.
func (p *Parser) commandComplete(m *msg, h *op) {
	r := &p.res
	r.results++
	if !m.cut && p.dec.cc.Decode(m.body) == nil {
		verb, count, ok := splitTag(p.dec.cc.CommandTag)
		if h.kind == opGap {
			r.results = 1 // one execution each
		}
		v := p.internVerb(verb)
		if r.results == 1 {
			r.verb, r.sameVerb = v, true
		} else if v != r.verb {
			r.sameVerb = false
		}
		r.count, r.hasCount = count, ok
		if v == "SELECT" || v == "FETCH" {
			r.rowsKnown = true
		}
		p.dec.cc.CommandTag = nil
	} else {
		p.stats.Malformed.Add(1)
		r.sameVerb = false
	}
	if h.kind == opExecute {
		p.executed(m)
	}
}

// executed ends the oldest op, an Execute, and emits it.
func (p *Parser) executed(m *msg) {
	o := p.q.pop()
	if p.described {
		p.res.rowsKnown = true
	}
	p.described = false
	p.emit(&o, m.end, outcomeDone)
	p.res = result{}
}

// splitTag splits a command tag ("INSERT 0 5", "SELECT 3", "CREATE
// TABLE") into its words and its trailing row count.
func splitTag(tag []byte) (verb []byte, count int64, ok bool) {
	verb = tag
	if i := bytes.LastIndexByte(tag, ' '); i >= 0 {
		var n int64
		digits := tag[i+1:]
		for _, c := range digits {
			if c < '0' || c > '9' || n > (1<<62)/10 {
				return tag, 0, false
			}
			n = n*10 + int64(c-'0')
		}
		if len(digits) == 0 {
			return tag, 0, false
		}
		verb, count, ok = tag[:i], n, true
		// INSERT's tag carries an OID before the count.
		if j := bytes.LastIndexByte(verb, ' '); j >= 0 && bytes.Equal(verb[:j], []byte("INSERT")) {
			verb = verb[:j]
		}
	}
	return verb, count, ok
}

// internVerb returns v as a string, reusing the last one or a common word.
func (p *Parser) internVerb(v []byte) string {
	if string(v) == p.lastVerb {
		return p.lastVerb
	}
	if w, ok := commonWords[string(v)]; ok {
		p.lastVerb = w
	} else {
		p.lastVerb = string(v)
	}
	return p.lastVerb
}

// errorCode returns an ErrorResponse's SQLSTATE.
func (p *Parser) errorCode(m *msg) string {
	if !m.cut && p.dec.err.Decode(m.body) == nil {
		code := p.dec.err.Code
		p.dec.err = errorResponseZero
		return code
	}
	code, _ := scanFields(m.body)
	return string(code)
}

// notice returns a NoticeResponse's SQLSTATE and whether it is a warning
// (the only notices a span reports).
func (p *Parser) notice(m *msg) (code string, warning bool) {
	if !m.cut && p.dec.notice.Decode(m.body) == nil {
		code, warning = p.dec.notice.Code, p.dec.notice.SeverityUnlocalized == "WARNING"
		p.dec.notice = noticeResponseZero
		return code, warning
	}
	c, sev := scanFields(m.body)
	if string(sev) != "WARNING" {
		return "", false
	}
	return string(c), true
}

// scanFields reads the SQLSTATE and unlocalised severity from the start
// of an ErrorResponse or NoticeResponse cut short.
func scanFields(b []byte) (code, severity []byte) {
	for len(b) > 0 && b[0] != 0 {
		k := b[0]
		v, rest, ok := cstr(b[1:])
		if !ok {
			return code, severity
		}
		switch k {
		case 'C':
			code = v
		case 'V':
			severity = v
		}
		b = rest
	}
	return code, severity
}

// emit sends the exchange of op o, ended at end.
func (p *Parser) emit(o *op, end int64, oc outcome) {
	r := &p.res
	p.pg = protocols.PostgresInfo{
		Operation:   p.operation(o, r),
		Query:       o.st.san,
		RawQuery:    o.st.raw,
		Database:    p.db,
		User:        p.user,
		Application: p.app,
		SQLState:    r.sqlstate,
		Rows:        -1,
		Failed:      r.failed,
		NoResponse:  oc == outcomeNone,
	}
	if r.results > 1 {
		p.pg.BatchSize = r.results
	}
	switch {
	case oc != outcomeDone:
	case r.lost:
		p.stats.Unknown.Add(1)
	case r.copyOut && r.hasCount:
		p.pg.Rows = r.count
	case r.rowsKnown:
		p.pg.Rows = r.rows
	}
	role := conn.RoleServer
	if p.reqDir == conn.Egress {
		role = conn.RoleClient
	}
	p.ex = protocols.Exchange{
		Conn:         p.info,
		Role:         role,
		Protocol:     protocols.Postgres,
		Start:        o.start,
		End:          max(end, o.start),
		RequestSeq:   o.seq,
		RequestTID:   o.tid,
		ResponseTID:  r.tid,
		RequestCause: o.cause,
		Postgres:     &p.pg,
	}
	p.stats.Exchanges.Add(1)
	p.sink(&p.ex)
}

// operation names what o did: the statement's first keyword; the command
// tag's verb when the text is unknown or starts with WITH; BATCH (and the
// common verb) for a simple query that ran several statements.
func (p *Parser) operation(o *op, r *result) string {
	if r.results > 1 {
		if r.sameVerb && r.verb != "" {
			return "BATCH " + r.verb
		}
		return "BATCH"
	}
	if (o.st.op == "" || o.st.op == "WITH") && r.verb != "" {
		return r.verb
	}
	return o.st.op
}

var (
	errorResponseZero  = pgproto3.ErrorResponse{}
	noticeResponseZero = pgproto3.NoticeResponse{}
)

package recording

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Proxy is a loopback TCP proxy to an upstream server that records every
// read it makes on the connections it forwards, in the order the reads
// returned. Each read is logged before it is forwarded, so the log's
// order follows causality across the two directions.
type Proxy struct {
	l        net.Listener
	upstream string
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    [][]Chunk
	errs     []error
}

// Listen starts a proxy to upstream on a free loopback port.
func Listen(upstream string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, upstream: upstream}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Close stops accepting connections, waits until those accepted have
// ended (both sides closed), and returns each one's chunks, in the order
// the connections were accepted.
func (p *Proxy) Close() ([][]Chunk, error) {
	p.l.Close()
	p.wg.Wait()
	return p.conns, errors.Join(p.errs...)
}

func (p *Proxy) fail(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.fail(err)
			}
			return
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			c.Close()
			p.fail(err)
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, nil)
		idx := len(p.conns) - 1
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var both sync.WaitGroup
			both.Add(2)
			go p.pipe(u.(*net.TCPConn), c.(*net.TCPConn), idx, true, &both)
			go p.pipe(c.(*net.TCPConn), u.(*net.TCPConn), idx, false, &both)
			both.Wait()
			c.Close()
			u.Close()
		}()
	}
}

func (p *Proxy) pipe(dst, src *net.TCPConn, idx int, toServer bool, done *sync.WaitGroup) {
	defer done.Done()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			p.conns[idx] = append(p.conns[idx], Chunk{toServer, bytes.Clone(buf[:n])})
			p.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.CloseWrite()
}

// Record runs client against a new proxy to upstream and returns the
// chunks of every connection the client made, in the order they were
// accepted.
func Record(upstream string, client func(addr string) error) ([][]Chunk, error) {
	p, err := Listen(upstream)
	if err != nil {
		return nil, err
	}
	cerr := client(p.Addr())
	conns, perr := p.Close()
	if err := errors.Join(cerr, perr); err != nil {
		return nil, err
	}
	return conns, nil
}

// RecordOne is Record for a client that makes exactly one connection.
func RecordOne(upstream string, client func(addr string) error) ([]Chunk, error) {
	conns, err := Record(upstream, client)
	if err != nil {
		return nil, err
	}
	if len(conns) != 1 {
		return nil, fmt.Errorf("the client made %d connections, want 1", len(conns))
	}
	return conns[0], nil
}

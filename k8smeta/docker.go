package k8smeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of DockerConfig.
const (
	DefaultDockerSocket   = "/var/run/docker.sock"
	DefaultMaxContainers  = 4096
	DefaultDockerTimeout  = 2 * time.Second
	DefaultDockerRetry    = 30 * time.Second
	DefaultDockerInFlight = 4
)

// maxInspectBody bounds the inspect answer read: a container with a
// thousand env entries and labels is still far below it.
const maxInspectBody = 4 << 20

// DockerConfig configures a Docker client. A zero field takes its default.
type DockerConfig struct {
	// Socket is the Docker Engine API's unix socket.
	Socket string
	// MaxContainers bounds the cache.
	MaxContainers int
	// Timeout bounds one inspect request.
	Timeout time.Duration
	// RetryAfter is how long a container whose fetch failed (daemon down,
	// timeout) is left alone before the next Lookup fetches it again. A
	// container the daemon does not know is never fetched again.
	RetryAfter time.Duration
	// MaxInFlight bounds concurrent fetches; a Lookup that finds them all
	// busy starts none, and a later Lookup tries again.
	MaxInFlight int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c DockerConfig) withDefaults() DockerConfig {
	if c.Socket == "" {
		c.Socket = DefaultDockerSocket
	}
	if c.MaxContainers <= 0 {
		c.MaxContainers = DefaultMaxContainers
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultDockerTimeout
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = DefaultDockerRetry
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultDockerInFlight
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Container is what the container runtime says about a container.
type Container struct {
	ID string
	// Name is the container's name without Docker's leading "/".
	Name string
	// ImageName is the image the container was created from, without tag
	// or digest ("docker.io/library/nginx"); ImageTag is its tag, if any.
	ImageName, ImageTag string
	// ServiceName is OTEL_SERVICE_NAME from the container's configured
	// environment; empty when unset.
	ServiceName string
}

// Docker is a read-only client of the Docker Engine API over its unix
// socket, with a cache. Safe for concurrent use.
type Docker struct {
	cfg    DockerConfig
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}

	mu         sync.Mutex
	containers map[string]*dockerEntry
	closed     bool

	hits, misses, fetches, notFound, failed, busy, evictions atomic.Uint64
}

type fetchState uint8

const (
	fetchPending fetchState = iota
	fetchDone
	fetchNotFound
	fetchFailed
)

type dockerEntry struct {
	state   fetchState
	c       Container
	retryAt time.Time // for fetchFailed
}

// DockerStats is a snapshot of what the client did.
type DockerStats struct {
	// Hits are lookups answered from the cache; Misses those that were
	// not (a fetch started or in flight, the container unknown, or the
	// daemon failing).
	Hits, Misses uint64
	// Fetches are inspect requests made; NotFound those the daemon
	// answered 404, Failed those that got no usable answer.
	Fetches, NotFound, Failed uint64
	// Busy are lookups that started no fetch because MaxInFlight were
	// already running.
	Busy uint64
	// Evictions are entries dropped to stay within MaxContainers.
	Evictions uint64
	// Containers is the number of cache entries now.
	Containers int
}

// NewDocker makes a client; it connects only when a Lookup needs a fetch.
// Close stops fetches in flight.
func NewDocker(cfg DockerConfig) *Docker {
	cfg = cfg.withDefaults()
	socket := cfg.Socket
	var dialer net.Dialer
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:    cfg.MaxInFlight,
		IdleConnTimeout: 30 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Docker{
		cfg:        cfg,
		client:     &http.Client{Transport: transport, Timeout: cfg.Timeout},
		ctx:        ctx,
		cancel:     cancel,
		sem:        make(chan struct{}, cfg.MaxInFlight),
		containers: make(map[string]*dockerEntry),
	}
}

// Lookup returns what is known about the container id without waiting:
// ok is false until a fetch has answered. The first Lookup of an id
// starts its fetch in the background. Ids that are not 64 hex digits are
// never fetched.
func (d *Docker) Lookup(id string) (Container, bool) {
	d.mu.Lock()
	e := d.containers[id]
	if e != nil && e.state == fetchDone {
		c := e.c
		d.mu.Unlock()
		d.hits.Add(1)
		return c, true
	}
	d.misses.Add(1)
	if !isContainerID(id) {
		d.mu.Unlock()
		return Container{}, false
	}
	if d.closed || e != nil && (e.state != fetchFailed || d.cfg.Now().Before(e.retryAt)) {
		d.mu.Unlock()
		return Container{}, false
	}
	select {
	case d.sem <- struct{}{}:
	default:
		d.mu.Unlock()
		d.busy.Add(1)
		return Container{}, false
	}
	if e == nil {
		e = &dockerEntry{}
		d.containers[id] = e
		for len(d.containers) > d.cfg.MaxContainers {
			d.evictLocked(id)
		}
	}
	e.state = fetchPending
	d.wg.Add(1)
	d.mu.Unlock()
	go d.fetch(id)
	return Container{}, false
}

// Forget drops a container, say when its last process exited.
func (d *Docker) Forget(id string) {
	d.mu.Lock()
	if e := d.containers[id]; e != nil && e.state != fetchPending {
		delete(d.containers, id)
	}
	d.mu.Unlock()
}

// Close stops fetches in flight and waits for them. Lookups after Close
// answer from the cache only.
func (d *Docker) Close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
	d.client.CloseIdleConnections()
}

// Stats returns the counters.
func (d *Docker) Stats() DockerStats {
	d.mu.Lock()
	n := len(d.containers)
	d.mu.Unlock()
	return DockerStats{
		Hits: d.hits.Load(), Misses: d.misses.Load(),
		Fetches: d.fetches.Load(), NotFound: d.notFound.Load(), Failed: d.failed.Load(),
		Busy: d.busy.Load(), Evictions: d.evictions.Load(), Containers: n,
	}
}

func (d *Docker) fetch(id string) {
	defer d.wg.Done()
	defer func() { <-d.sem }()
	d.fetches.Add(1)
	c, err := d.Inspect(d.ctx, id)

	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.containers[id]
	if e == nil {
		// Evicted while in flight; the answer is still worth keeping.
		e = &dockerEntry{}
		d.containers[id] = e
		for len(d.containers) > d.cfg.MaxContainers {
			d.evictLocked(id)
		}
	}
	switch {
	case err == nil:
		e.state, e.c = fetchDone, c
	case errors.Is(err, ErrNoSuchContainer):
		d.notFound.Add(1)
		e.state = fetchNotFound
	default:
		d.failed.Add(1)
		e.state, e.retryAt = fetchFailed, d.cfg.Now().Add(d.cfg.RetryAfter)
	}
}

// evictLocked drops one entry other than keep and other than those being
// fetched: among a sample, one the daemon did not know or failed on, if
// any.
func (d *Docker) evictLocked(keep string) {
	var victim string
	n := 0
	for id, e := range d.containers {
		if id == keep || e.state == fetchPending {
			continue
		}
		if victim == "" || e.state != fetchDone {
			victim = id
			if e.state != fetchDone {
				break
			}
		}
		if n++; n == evictionSample {
			break
		}
	}
	if victim == "" {
		// Everything else is in flight (at most MaxInFlight entries): let
		// the map run over by that much.
		return
	}
	delete(d.containers, victim)
	d.evictions.Add(1)
}

// ErrNoSuchContainer is what Inspect returns when the daemon does not know
// the container.
var ErrNoSuchContainer = errors.New("no such container")

// inspect is the part of GET /containers/{id}/json that is used.
type inspect struct {
	ID     string `json:"Id"`
	Name   string `json:"Name"`
	Config struct {
		Image string   `json:"Image"`
		Env   []string `json:"Env"`
	} `json:"Config"`
}

// Inspect asks the daemon about one container, waiting for the answer.
// Lookup is the non-blocking, cached way in.
func (d *Docker) Inspect(ctx context.Context, id string) (Container, error) {
	if !isContainerID(id) {
		return Container{}, fmt.Errorf("inspect container %q: not a container id", id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker/containers/"+id+"/json", nil)
	if err != nil {
		return Container{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return Container{}, fmt.Errorf("inspect container %s: %w", id, err)
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxInspectBody)
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		_, _ = io.Copy(io.Discard, body)
		return Container{}, fmt.Errorf("inspect container %s: %w", id, ErrNoSuchContainer)
	default:
		_, _ = io.Copy(io.Discard, body)
		return Container{}, fmt.Errorf("inspect container %s: %s", id, resp.Status)
	}
	var in inspect
	if err := json.NewDecoder(body).Decode(&in); err != nil {
		return Container{}, fmt.Errorf("inspect container %s: decode: %w", id, err)
	}
	c := Container{ID: id, Name: strings.TrimPrefix(in.Name, "/")}
	c.ImageName, c.ImageTag = SplitImage(in.Config.Image)
	for _, kv := range in.Config.Env {
		if v, ok := strings.CutPrefix(kv, "OTEL_SERVICE_NAME="); ok {
			c.ServiceName = v
		}
	}
	return c, nil
}

// SplitImage splits an image reference into its name and tag:
// "registry:5000/team/app:1.2@sha256:..." is "registry:5000/team/app" and
// "1.2". A reference by digest alone has no tag; a bare image id
// ("sha256:<hex>") is returned as the name.
func SplitImage(ref string) (name, tag string) {
	if strings.HasPrefix(ref, "sha256:") {
		return ref, ""
	}
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	slash := strings.LastIndexByte(ref, '/')
	if i := strings.LastIndexByte(ref, ':'); i > slash {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

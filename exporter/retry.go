package exporter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// retryableError marks an export failure the OTLP specification says may
// succeed if tried again (the backend is overloaded or restarting).
type retryableError struct {
	err   error
	after time.Duration // the backend's wait hint, 0 for none
}

func (e *retryableError) Error() string { return e.err.Error() }
func (e *retryableError) Unwrap() error { return e.err }

// Retryable marks err as worth retrying after at least the given wait (0
// lets the pipeline's backoff choose). A Sender error not marked so drops
// its batch at once.
func Retryable(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryableError{err: err, after: max(after, 0)}
}

// retryable reports whether err was marked Retryable, and its wait hint.
func retryable(err error) (bool, time.Duration) {
	var re *retryableError
	if errors.As(err, &re) {
		return true, re.after
	}
	return false, 0
}

// PartialSuccessError reports that the backend took the batch but rejected
// some of its spans. It is not retryable: the specification says sending
// the same data again would be rejected again.
type PartialSuccessError struct {
	Rejected int64
	Message  string
}

func (e *PartialSuccessError) Error() string {
	return fmt.Sprintf("backend rejected %d spans: %s", e.Rejected, e.Message)
}

// backoff yields exponentially growing waits with jitter, so agents on many
// nodes that lost the same collector do not come back in lockstep.
type backoff struct {
	next, max time.Duration
}

// wait returns the next wait: the current interval scaled by a random
// factor in [0.5, 1.5), capped at max.
func (b *backoff) wait() time.Duration {
	d := b.next
	b.next = min(b.next*2, b.max)
	if d <= 0 {
		return 0
	}
	return min(d/2+rand.N(d), b.max)
}

package conn

import (
	"math/rand"
	"testing"
)

func BenchmarkFuzzBody(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	in := make([]byte, 500)
	r.Read(in)
	t := &testing.T{}
	for b.Loop() {
		fuzzReassembly(t, in)
	}
}

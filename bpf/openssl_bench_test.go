package bpf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkOpenSSLUprobes measures what the SSL_read/SSL_write uprobes add
// to a TLS workload: with weft's syscall probes loaded, the same python
// (OpenSSL) round-trip loop runs without the uprobes and with them, in one
// run, and the ratio is reported. Each round trip is four SSL calls (write
// and read on each side). ns/roundtrip-untraced is the loop with no weft at
// all, for scale.
func BenchmarkOpenSSLUprobes(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to load BPF programs")
	}
	cert, key := benchCert(b)
	const roundTrips = 5000
	run := func() float64 {
		out, err := exec.Command("python3", "testdata/sslbench.py", strconv.Itoa(roundTrips), cert, key).Output()
		if err != nil {
			b.Fatalf("sslbench.py: %v", err)
		}
		ns, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			b.Fatalf("sslbench.py output %q: %v", out, err)
		}
		return ns
	}
	var untraced, base, traced float64
	for i := 0; i < b.N; i++ {
		untraced += run()
		tr, stop := loadForBench(b, Config{})
		tr.OpenSSL().closeAll()
		base += run()
		attachOpenSSL(b, tr)
		if tr.OpenSSL().Attached() == 0 {
			b.Fatal("no OpenSSL library attached")
		}
		traced += run()
		stop()
	}
	n := float64(b.N)
	b.ReportMetric(untraced/n, "ns/roundtrip-untraced")
	b.ReportMetric(base/n, "ns/roundtrip-base")
	b.ReportMetric(traced/n, "ns/roundtrip-uprobes")
	b.ReportMetric((traced-base)/n/4, "ns/sslcall-added")
	b.ReportMetric(traced/base, "ratio")
}

// attachOpenSSL attaches the uprobes to the libssl python maps, as weft
// does when a process maps it: through a python that imported ssl and
// waits (on a quiet machine no running process may map it).
func attachOpenSSL(b *testing.B, tr *Tracer) {
	b.Helper()
	cmd := exec.Command("python3", "-c", "import ssl, sys, time; print('up', flush=True); time.sleep(60)")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("python3: %v", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	if _, err := out.Read(make([]byte, 2)); err != nil {
		b.Fatalf("python3 did not start: %v", err)
	}
	tr.OpenSSL().ScanProcess(uint32(cmd.Process.Pid))
}

// loadForBench loads and attaches the tracer with cfg and reads its ring
// buffer into nopHandler until stop, which detaches everything.
func loadForBench(b *testing.B, cfg Config) (tr *Tracer, stop func()) {
	b.Helper()
	tr, err := Load(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tr.Run(nopHandler{}) }()
	return tr, func() {
		tr.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

type nopHandler struct{}

func (nopHandler) ConnOpen(*ConnEvent)                        {}
func (nopHandler) ConnClose(*ConnEvent)                       {}
func (nopHandler) Data(*DataEvent, []byte)                    {}
func (nopHandler) ProcessExit(*ProcEvent)                     {}
func (nopHandler) ProcessInfo(*ProcInfoEvent, []byte, []byte) {}
func (nopHandler) StreamCause(*StreamEvent)                   {}
func (nopHandler) Tick(int64)                                 {}

func benchCert(b *testing.B) (certPath, keyPath string) {
	dir := b.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		b.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(k)
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return certPath, keyPath
}

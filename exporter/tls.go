package exporter

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig trusts the CAs in cfg.Certificate, or the system roots when
// it is empty (a private collector CA is the usual reason to set one), and
// presents the client certificate and key for mutual TLS when both are set.
func tlsConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case cfg.ClientCertificate != "" && cfg.ClientKey != "":
		cert, err := tls.LoadX509KeyPair(cfg.ClientCertificate, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("read otlp client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case cfg.ClientCertificate != "" || cfg.ClientKey != "":
		return nil, fmt.Errorf("otlp mutual TLS needs both a client certificate and its key (OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY)")
	}
	caFile := cfg.Certificate
	if caFile == "" {
		return tc, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read otlp certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("read otlp certificate %s: no PEM certificate found", caFile)
	}
	tc.RootCAs = pool
	return tc, nil
}

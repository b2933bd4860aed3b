package exporter

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig trusts the CAs in caFile, or the system roots when caFile is
// empty; a private collector CA is the usual reason to set one.
func tlsConfig(caFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
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

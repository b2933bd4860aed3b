package exporter

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Sender delivers one converted batch somewhere. The pipeline calls Export
// from a single goroutine and retries it while the error says Retryable;
// Export must return soon after ctx is done, or Shutdown cannot keep its
// deadline. Shutdown is called once, after the last Export.
type Sender interface {
	Export(ctx context.Context, td ptrace.Traces) error
	Shutdown(ctx context.Context) error
}

var (
	_ Sender = (*grpcSender)(nil)
	_ Sender = (*httpSender)(nil)
	_ Sender = (*consoleSender)(nil)
	_ Sender = (*summarySender)(nil)
	_ Sender = (*jsonlSender)(nil)
)

// newSender builds the sender cfg asks for; stdout is where console (and
// jsonl with path "-") write. It returns nil for the none exporter.
func newSender(cfg Config, stdout io.Writer) (Sender, error) {
	switch exp := cfg.ResolvedExporter(); exp {
	case ExporterNone:
		return nil, nil
	case ExporterConsole:
		if cfg.ConsoleSummary {
			return newSummarySender(stdout, cfg.ConsoleSummaryInterval, nil), nil
		}
		return newConsoleSender(stdout), nil
	case ExporterJSONL:
		if cfg.JSONLPath == "-" {
			return newJSONLSender(stdout, nil), nil
		}
		f, err := os.OpenFile(cfg.JSONLPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open jsonl file: %w", err)
		}
		return newJSONLSender(f, f), nil
	case ExporterOTLP:
		if cfg.Protocol == ProtocolGRPC {
			return newGRPCSender(cfg)
		}
		return newHTTPSender(cfg)
	default:
		return nil, fmt.Errorf("unknown exporter %q", exp)
	}
}

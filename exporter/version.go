package exporter

import "runtime/debug"

// Version is weft's version, reported as the instrumentation scope version
// and in the User-Agent. Release builds set it with
// -ldflags "-X github.com/weftrace/weft/exporter.Version=v1.2.3"; otherwise
// it comes from the module's build information.
var Version string

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func userAgent() string { return "weft/" + version() }

// Package e2e holds weft's end-to-end tests: real programs (Go net/http,
// curl, python's http.server, nginx) talk HTTP/1.x, and dig, Go's resolver
// and a DNS server built on dnsmessage talk DNS, over loopback while the
// real agent (bin/weft, built by the tests) traces them with eBPF and exports
// OTLP to a real Jaeger; the tests then read the spans back from Jaeger's
// HTTP API and check them against what the programs did.
//
// TestKubernetes adds a real control plane: Debian's etcd and the pinned
// kube-apiserver v1.34.4 (e2e/kube-apiserver.sh builds it once into the
// cache), deploy/kubernetes applied to it, and pods whose containers are
// real processes in real cgroups.
//
// Run as root:
//
//	make jaeger kube-apiserver   # or: e2e/jaeger.sh; e2e/kube-apiserver.sh
//	go test -v -count=1 ./e2e/
//
// Without root every test is skipped with the reason; as root nothing is
// skipped: a missing Jaeger binary, a weft that does not build, start or
// become ready, or missing spans all fail.
//
// Environment:
//
//	WEFT_JAEGER_BIN      Jaeger binary (default ${WEFT_CACHE:-$HOME/.cache/weft}/jaeger-v1.76.0)
//	WEFT_KUBE_APISERVER_BIN  kube-apiserver (default ${WEFT_CACHE:-$HOME/.cache/weft}/kube-apiserver-v1.34.4)
//	WEFT_E2E_BIN         a weft binary to test instead of building ./cmd/weft
//	WEFT_E2E_LOG_LEVEL   weft's --log-level (default info)
//	WEFT_E2E_KEEP=1      keep the temporary directory (logs, configs) even on success
package e2e

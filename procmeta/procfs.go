package procmeta

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Environment variables kept from a process's environment; nothing else is.
const (
	envServiceName        = "OTEL_SERVICE_NAME"
	envResourceAttributes = "OTEL_RESOURCE_ATTRIBUTES"
)

const (
	// maxCmdline bounds the read of /proc/PID/cmdline: only argv[0] is
	// kept, and a path longer than this is not a useful name.
	maxCmdline = 4096
	// maxEnvValue bounds a kept environment value. A longer one is dropped
	// whole: a truncated OTEL_RESOURCE_ATTRIBUTES would carry a broken pair.
	maxEnvValue = 16 << 10
	// envReadBuf is the environ reader's buffer; entries longer than it are
	// streamed, so no environment size makes the read unbounded.
	envReadBuf = 4096
)

// procInfo is what /proc said about one process.
type procInfo struct {
	exePath       string
	command       string // argv[0]
	comm          string // /proc/PID/comm: the thread-group leader's name
	serviceName   string // OTEL_SERVICE_NAME
	resourceAttrs string // OTEL_RESOURCE_ATTRIBUTES
	found         bool   // /proc knew the process
}

// readProc reads what it can of root/pid; a file it may not read (a kernel
// thread has no exe, environ needs ptrace access) leaves its fields empty.
// found is false when the process is gone (or is a zombie, which has neither
// an exe nor a command line).
func readProc(root string, pid uint32) procInfo {
	dir := filepath.Join(root, strconv.FormatUint(uint64(pid), 10))
	var info procInfo
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		// The kernel marks an executable replaced or removed since exec.
		info.exePath = strings.TrimSuffix(exe, " (deleted)")
	}
	if cmd, err := readArgv0(filepath.Join(dir, "cmdline")); err == nil {
		info.command = cmd
	}
	// /proc/PID/comm is the leader's name, not that of whichever thread
	// moved the bytes (dig's I/O runs on threads it names isc-net-0000).
	// A zombie still has it.
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		info.comm = strings.TrimSpace(string(b))
	}
	info.found = info.exePath != "" || info.command != ""
	if !info.found {
		return info
	}
	if f, err := os.Open(filepath.Join(dir, "environ")); err == nil {
		info.serviceName, info.resourceAttrs, _ = scanOTelEnv(f)
		_ = f.Close()
	}
	return info
}

// readArgv0 returns the first NUL-terminated string of a cmdline file.
func readArgv0(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, maxCmdline)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return string(buf), nil
}

// scanOTelEnv streams a NUL-separated environment and returns the values of
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES. Other entries are skipped
// without being copied. The first occurrence of a variable wins, as in
// getenv.
func scanOTelEnv(r io.Reader) (serviceName, resourceAttrs string, err error) {
	br := bufio.NewReaderSize(r, envReadBuf)
	var haveService, haveAttrs bool
	for {
		chunk, err := br.ReadSlice(0)
		more := errors.Is(err, bufio.ErrBufferFull) // the entry goes on
		if err != nil && !more && !errors.Is(err, io.EOF) {
			return serviceName, resourceAttrs, err
		}
		var dst *string // where the entry's value goes, nil to skip it
		var val []byte
		switch {
		case !haveService && hasEnvKey(chunk, envServiceName):
			dst, haveService = &serviceName, true
			val = append(val, chunk[len(envServiceName)+1:]...)
		case !haveAttrs && hasEnvKey(chunk, envResourceAttributes):
			dst, haveAttrs = &resourceAttrs, true
			val = append(val, chunk[len(envResourceAttributes)+1:]...)
		}
		for more {
			chunk, err = br.ReadSlice(0)
			more = errors.Is(err, bufio.ErrBufferFull)
			if err != nil && !more && !errors.Is(err, io.EOF) {
				return serviceName, resourceAttrs, err
			}
			if dst == nil {
				continue
			}
			if len(val)+len(chunk) > maxEnvValue+1 { // +1: the NUL
				dst, val = nil, nil // too long: dropped whole
				continue
			}
			val = append(val, chunk...)
		}
		if val = bytes.TrimSuffix(val, []byte{0}); dst != nil && len(val) <= maxEnvValue {
			*dst = string(val)
		}
		if err != nil { // io.EOF
			return serviceName, resourceAttrs, nil
		}
	}
}

// hasEnvKey reports whether entry is "key=...".
func hasEnvKey(entry []byte, key string) bool {
	return len(entry) > len(key) && entry[len(key)] == '=' && string(entry[:len(key)]) == key
}

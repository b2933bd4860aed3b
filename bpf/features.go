package bpf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"
)

// ErrNotSupported is wrapped by every error Check returns for a missing
// kernel feature or privilege.
var ErrNotSupported = errors.New("not supported")

// TracefsRoots are where tracefs is looked for, in order.
var tracefsRoots = []string{"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}

// Check tells, in one line, what this machine lacks to run weft: privileges,
// BTF, the ring buffer, syscall tracepoints. It mounts tracefs when it is
// missing, as the agent needs it anyway.
func Check() error {
	if missing := missingCaps(); len(missing) > 0 {
		return fmt.Errorf("%w: weft lacks %s: run it as root, or grant %s (or CAP_SYS_ADMIN)", ErrNotSupported, strings.Join(missing, " and "), strings.Join(missing, " and "))
	}
	if _, err := btf.LoadKernelSpec(); err != nil {
		return fmt.Errorf("%w: kernel BTF missing (/sys/kernel/btf/vmlinux): use a kernel built with CONFIG_DEBUG_INFO_BTF=y: %v", ErrNotSupported, err)
	}
	if err := features.HaveMapType(ebpf.RingBuf); err != nil {
		return fmt.Errorf("%w: BPF ring buffer unavailable (needs Linux 5.8+): %v", ErrNotSupported, err)
	}
	if err := features.HaveProgramType(ebpf.TracePoint); err != nil {
		return fmt.Errorf("%w: tracepoint programs unavailable: %v", ErrNotSupported, err)
	}
	root, err := tracefs()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "events/syscalls/sys_enter_read")); err != nil {
		return fmt.Errorf("%w: syscall tracepoints missing under %s/events/syscalls: use a kernel built with CONFIG_FTRACE_SYSCALLS=y", ErrNotSupported, root)
	}
	return nil
}

// tracefs returns tracefs's mount point, mounting it when absent.
func tracefs() (string, error) {
	for _, root := range tracefsRoots {
		if _, err := os.Stat(filepath.Join(root, "events")); err == nil {
			return root, nil
		}
	}
	root := tracefsRoots[0]
	if err := unix.Mount("tracefs", root, "tracefs", 0, ""); err != nil {
		return "", fmt.Errorf("%w: tracefs not mounted and mounting it failed: run `mount -t tracefs tracefs %s`: %v", ErrNotSupported, root, err)
	}
	return root, nil
}

// hasCaps reports whether the process holds CAP_BPF, CAP_PERFMON and
// CAP_SYS_RESOURCE in its effective set (enough without root on 5.8+).
// missingCaps names the capabilities weft cannot load or attach without,
// by their effective set (root in a container may lack them too):
// CAP_BPF and CAP_PERFMON, each covered by CAP_SYS_ADMIN.
func missingCaps() []string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil // cannot tell: let loading say what fails
	}
	has := func(c uint) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	if has(unix.CAP_SYS_ADMIN) {
		return nil
	}
	var missing []string
	if !has(unix.CAP_BPF) {
		missing = append(missing, "CAP_BPF")
	}
	if !has(unix.CAP_PERFMON) {
		missing = append(missing, "CAP_PERFMON")
	}
	return missing
}

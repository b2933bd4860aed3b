package bpf

import "github.com/cilium/ebpf"

// probe describes one attachment once: which program, which tracepoint, and
// whether weft can run without it.
type probe struct {
	group, name string
	prog        func(*weftPrograms) *ebpf.Program
	required    bool
}

// probes is every hook weft attaches. Socket I/O and the connection life
// are required: without them there is nothing to trace. Process exit and
// exec only free state sooner or re-announce a process (idle eviction and
// /proc catch the rest), so they are optional.
var probes = []probe{
	{"syscalls", "sys_enter_read", func(p *weftPrograms) *ebpf.Program { return p.EnterRead }, true},
	{"syscalls", "sys_exit_read", func(p *weftPrograms) *ebpf.Program { return p.ExitRead }, true},
	{"syscalls", "sys_enter_write", func(p *weftPrograms) *ebpf.Program { return p.EnterWrite }, true},
	{"syscalls", "sys_exit_write", func(p *weftPrograms) *ebpf.Program { return p.ExitWrite }, true},
	{"syscalls", "sys_enter_readv", func(p *weftPrograms) *ebpf.Program { return p.EnterReadv }, true},
	{"syscalls", "sys_exit_readv", func(p *weftPrograms) *ebpf.Program { return p.ExitReadv }, true},
	{"syscalls", "sys_enter_writev", func(p *weftPrograms) *ebpf.Program { return p.EnterWritev }, true},
	{"syscalls", "sys_exit_writev", func(p *weftPrograms) *ebpf.Program { return p.ExitWritev }, true},
	{"syscalls", "sys_enter_recvfrom", func(p *weftPrograms) *ebpf.Program { return p.EnterRecvfrom }, true},
	{"syscalls", "sys_exit_recvfrom", func(p *weftPrograms) *ebpf.Program { return p.ExitRecvfrom }, true},
	{"syscalls", "sys_enter_sendto", func(p *weftPrograms) *ebpf.Program { return p.EnterSendto }, true},
	{"syscalls", "sys_exit_sendto", func(p *weftPrograms) *ebpf.Program { return p.ExitSendto }, true},
	{"syscalls", "sys_enter_recvmsg", func(p *weftPrograms) *ebpf.Program { return p.EnterRecvmsg }, true},
	{"syscalls", "sys_exit_recvmsg", func(p *weftPrograms) *ebpf.Program { return p.ExitRecvmsg }, true},
	{"syscalls", "sys_enter_sendmsg", func(p *weftPrograms) *ebpf.Program { return p.EnterSendmsg }, true},
	{"syscalls", "sys_exit_sendmsg", func(p *weftPrograms) *ebpf.Program { return p.ExitSendmsg }, true},
	{"syscalls", "sys_enter_recvmmsg", func(p *weftPrograms) *ebpf.Program { return p.EnterRecvmmsg }, true},
	{"syscalls", "sys_exit_recvmmsg", func(p *weftPrograms) *ebpf.Program { return p.ExitRecvmmsg }, true},
	{"syscalls", "sys_enter_sendmmsg", func(p *weftPrograms) *ebpf.Program { return p.EnterSendmmsg }, true},
	{"syscalls", "sys_exit_sendmmsg", func(p *weftPrograms) *ebpf.Program { return p.ExitSendmmsg }, true},
	{"syscalls", "sys_enter_sendfile64", func(p *weftPrograms) *ebpf.Program { return p.EnterSendfile }, true},
	{"syscalls", "sys_exit_sendfile64", func(p *weftPrograms) *ebpf.Program { return p.ExitSendfile }, true},
	{"syscalls", "sys_enter_connect", func(p *weftPrograms) *ebpf.Program { return p.EnterConnect }, true},
	{"syscalls", "sys_exit_connect", func(p *weftPrograms) *ebpf.Program { return p.ExitConnect }, true},
	{"syscalls", "sys_exit_accept", func(p *weftPrograms) *ebpf.Program { return p.ExitAccept }, true},
	{"syscalls", "sys_exit_accept4", func(p *weftPrograms) *ebpf.Program { return p.ExitAccept4 }, true},
	{"syscalls", "sys_enter_close", func(p *weftPrograms) *ebpf.Program { return p.EnterClose }, true},
	// Event loop boundaries: without them a thread's last read is never
	// forgotten, so its causes are only trusted from thread-per-request
	// servers.
	{"syscalls", "sys_enter_epoll_wait", func(p *weftPrograms) *ebpf.Program { return p.EnterEpollWait }, false},
	{"syscalls", "sys_enter_epoll_pwait", func(p *weftPrograms) *ebpf.Program { return p.EnterEpollPwait }, false},
	{"syscalls", "sys_enter_epoll_pwait2", func(p *weftPrograms) *ebpf.Program { return p.EnterEpollPwait2 }, false},
	{"syscalls", "sys_enter_poll", func(p *weftPrograms) *ebpf.Program { return p.EnterPoll }, false},
	{"syscalls", "sys_enter_ppoll", func(p *weftPrograms) *ebpf.Program { return p.EnterPpoll }, false},
	{"syscalls", "sys_enter_select", func(p *weftPrograms) *ebpf.Program { return p.EnterSelect }, false},
	{"syscalls", "sys_enter_pselect6", func(p *weftPrograms) *ebpf.Program { return p.EnterPselect6 }, false},
	{"sched", "sched_process_exit", func(p *weftPrograms) *ebpf.Program { return p.ProcessExit }, false},
	{"sched", "sched_process_exec", func(p *weftPrograms) *ebpf.Program { return p.ProcessExec }, false},
}

// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket I/O capture from syscall tracepoints.
 *
 * Enter handlers stash the syscall's arguments per thread; exit handlers,
 * knowing how many bytes really moved, find the socket behind the fd
 * (task->files->fdt->fd[fd]->private_data->sk, CO-RE), keep per-connection
 * stream offsets and send the captured bytes to user space through one ring
 * buffer. Only TCP over IPv4/IPv6 is captured. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define MSG_PEEK 2
#define EINPROGRESS 115

/* Largest capture per syscall; the runtime limit capture_size is <= this. */
#define MAX_CAPTURE 16384
/* iovec entries walked per readv/writev/recvmsg/sendmsg. */
#define MAX_IOV 16
/* messages walked per sendmmsg/recvmmsg (DNS resolvers send 2). */
#define MAX_MMSG 4

/* Set by the loader before load. */
volatile const __u32 self_tgid = 0;
volatile const __u32 only_tgid = 0; /* benchmarks: trace this process alone */
volatile const __u32 capture_size = 8192;
volatile const __u32 wakeup_events = 32;
volatile const __u64 wakeup_bytes = 1 << 20;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the loader */
} events SEC(".maps");

/* Events that did not fit in the ring buffer, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Events since the last forced wake-up, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} pending SEC(".maps");

struct conn_key {
	__u32 tgid;
	__s32 fd;
};

/* A read that later writes are attributed to. */
struct cause {
	__u64 gen;
	__u64 ts; /* exit of the read */
	__s32 fd;
	__u32 kind;   /* enum weft_cause_kind, 0: none */
	__u32 stream; /* HTTP/2 stream id of fd#gen, 0: a read, not a stream */
	__u32 _pad;
};

struct conn_state {
	__u64 gen;
	__u64 offset[2]; /* next byte offset per direction */
	__u64 sock;      /* struct socket * the fd pointed at when seen */
	__u64 file;      /* its struct file *: while fds[fd] is still this, the
			  * fd is still this socket and no walk is needed */
	__u64 sk;        /* its struct sock * */
	__u32 proto;     /* enum weft_proto */
	__u16 role;      /* enum weft_role, kept for the TLS generation */
	__u16 tls;       /* OpenSSL seen on it: socket bytes are ciphertext */
	__u64 tls_offset[2]; /* plaintext offsets per direction */
	struct cause connect_cause; /* consumed by the first egress */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_state);
} conns SEC(".maps");

/* Syscall arguments kept from enter to exit, per thread. */
struct args {
	__u64 buf;    /* buffer, iovec array, or mmsghdr array */
	__u64 ts;     /* enter time */
	__u64 addr;   /* user sockaddr of the peer (sendto/recvfrom/msg_name), or 0 */
	__s32 fd;
	__u32 iovcnt; /* 0: buf is a plain buffer; mmsg: vlen */
	__u8 op;      /* enum weft_data_op, or OP_CONNECT */
	__u8 dir;
	__u8 valid;   /* set by the enter, cleared by the exit */
	__u8 _pad[5];
};

/* The stash of connect's enter (not a data op). */
#define OP_CONNECT 0x80

/* In task storage: a pointer the task already holds, so an enter is a
 * store and an exit a load, where an LRU hash took an update and a delete
 * (the dearest map operations) on every read and write of every fd. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct args);
} thread_args SEC(".maps");

/* Scratch space to assemble a data event: twice MAX_CAPTURE so that a copy
 * at any offset below MAX_CAPTURE of up to MAX_CAPTURE bytes is provably in
 * bounds for the verifier. One slot per CPU (too big for a per-CPU map). */
struct scratch {
	struct weft_data_event hdr;
	__u8 data[MAX_CAPTURE * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1); /* resized to the CPU count by the loader */
	__type(key, __u32);
	__type(value, struct scratch);
} scratch_buf SEC(".maps");

/* Processes whose identity was already sent (EVENT_PROC_INFO). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} procs_seen SEC(".maps");

/* ---- attribution state ------------------------------------------------ */

/* Per thread: its last socket read since its event loop last woke
 * (cleared at epoll_wait/poll/select). Used for processes that are not Go.
 * Task storage: a pointer into the task, no hash update per read, and it
 * goes away with the thread. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cause);
} thread_cause SEC(".maps");

/* Go processes, registered by user space with the offsets read from the
 * binary (DWARF, or a table per Go version). */
struct go_offsets {
	__s32 tls_g;       /* offset of the g pointer from fsbase (-8) */
	__u32 goid;        /* runtime.g.goid */
	__u32 parent_goid; /* runtime.g.parentGoid, 0: unknown */
	__u32 pconn_conn;  /* net/http.persistConn.conn (a net.Conn) */
	__u32 netfd_sysfd; /* net.netFD.pfd.Sysfd */
	/* grpc-go transport, 0: unknown */
	__u32 grpc_srv_stream_id; /* transport.ServerStream.Stream.id */
	__u32 grpc_srv_conn;      /* transport.http2Server.conn */
	__u32 grpc_cli_stream_id; /* transport.ClientStream.Stream.id */
	__u32 grpc_cli_conn;      /* transport.http2Client.conn */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct go_offsets);
} go_procs SEC(".maps");

struct go_key {
	__u32 tgid;
	__u32 _pad;
	__u64 goid;
};

/* Per goroutine: its last socket read. goids are never reused within a
 * process, so a stale entry only waits for the LRU. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct cause);
} go_cause SEC(".maps");

/* Per connection: the cause a Go request hand-off ((*persistConn).roundTrip
 * on the caller's goroutine) left for the next write on it, made by the
 * connection's own writeLoop goroutine. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct cause);
} fd_cause SEC(".maps");

/* CPython processes, registered by user space: where the process's
 * _PyRuntime is and the offsets of the fields on the way from it to the
 * running coroutine (bpf/pyexec.go). */
struct py_offsets {
	__u64 runtime;        /* address of _PyRuntime */
	__u32 interp_main;    /* _PyRuntimeState.interpreters.main */
	__u32 threads_head;   /* PyInterpreterState.threads.head */
	__u32 ts_next;        /* PyThreadState.next */
	__u32 ts_native_tid;  /* PyThreadState.native_thread_id */
	__u32 ts_cframe;      /* PyThreadState.cframe */
	__u32 cframe_current; /* _PyCFrame.current_frame */
	__u32 frame_previous; /* _PyInterpreterFrame.previous */
	__u32 frame_owner;    /* _PyInterpreterFrame.owner (a char) */
	__u8 owned_by_generator;
	__u8 _pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct py_offsets);
} py_procs SEC(".maps");

/* Per thread of a CPython process: its PyThreadState, found once by
 * walking the interpreter's thread list, and the runtime it belongs to
 * (an exec'd thread has another). */
struct py_thread_state {
	__u64 tstate;
	__u64 runtime;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct py_thread_state);
} py_thread SEC(".maps");

#define MAX_ARGV 256
#define MAX_ENV (MAX_CAPTURE - MAX_ARGV)

/* Make sure the event types are in BTF for bpf2go -type. */
const struct weft_conn_event *unused_conn_event __attribute__((unused));
const struct weft_proc_event *unused_proc_event __attribute__((unused));
const struct weft_proc_info_event *unused_proc_info_event __attribute__((unused));
const enum weft_event_kind *unused_event_kind __attribute__((unused));
const enum weft_role *unused_role __attribute__((unused));
const enum weft_direction *unused_direction __attribute__((unused));
const enum weft_data_op *unused_data_op __attribute__((unused));
const enum weft_proto *unused_proto __attribute__((unused));
const enum weft_cause_kind *unused_cause_kind __attribute__((unused));
const struct weft_stream_event *unused_stream_event __attribute__((unused));

/* Casts a kernel address to a BTF type for direct (fault-safe) loads. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* is_self reports whether pid_tgid is a process weft does not trace: weft
 * itself, or any but only_tgid when that is set. */
static __always_inline bool is_self(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;
	return tgid == self_tgid || (only_tgid && tgid != only_tgid);
}

static __always_inline __u64 wakeup_flags(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&pending, &zero);
	if (n) {
		*n += 1;
		if (*n >= wakeup_events) {
			*n = 0;
			return BPF_RB_FORCE_WAKEUP;
		}
	}
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);
	if (n)
		*n += 1;
}

static __always_inline void output(void *ev, __u64 size)
{
	if (bpf_ringbuf_output(&events, ev, size, wakeup_flags()))
		count_lost();
}

/* fd_file returns the struct file * at fd in the current task's table, or
 * NULL. The task pointer is trusted BTF, so the chain to the table is
 * direct loads; only the slot needs a helper (an array of pointers is no
 * type the verifier walks). */
static __always_inline struct file *fd_file(__s32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files = task->files;
	if (!files)
		return NULL;
	struct fdtable *fdt = files->fdt;
	if (!fdt || fd < 0 || (__u32)fd >= fdt->max_fds)
		return NULL;
	struct file **fds = fdt->fd;
	struct file *f = NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* file_socket returns the struct socket * of file f, or NULL when f is not
 * a socket. */
static __always_inline struct socket *file_socket(struct file *f)
{
	if (!f)
		return NULL;
	/* Direct loads: an exit on a file or pipe ends here, cheaply. */
	struct file *file = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
	umode_t mode = file->f_inode->i_mode;
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	return file->private_data;
}

/* inet_sock_of returns the sock of a TCP stream or UDP datagram socket over
 * IPv4/IPv6, else NULL; *proto gets IPPROTO_TCP or IPPROTO_UDP. */
static __always_inline struct sock *inet_sock_of(struct socket *sock, __u32 *proto)
{
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return NULL;
	__u16 type = BPF_CORE_READ(sk, sk_type), p = BPF_CORE_READ(sk, sk_protocol);
	if (type == SOCK_STREAM && p == IPPROTO_TCP) {
		*proto = PROTO_TCP;
		return sk;
	}
	if (type == SOCK_DGRAM && p == IPPROTO_UDP) {
		*proto = PROTO_UDP;
		return sk;
	}
	return NULL;
}

static __always_inline void emit_open(struct conn_key *key, __u64 gen, struct sock *sk, __u16 role, __u32 proto, __u16 tls)
{
	struct weft_conn_event ev = {};
	ev.proto = proto;
	ev.tls = tls;
	ev.kind = EVENT_CONN_OPEN;
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.ts_ns = bpf_ktime_get_ns();
	ev.tgid = key->tgid;
	ev.fd = key->fd;
	ev.gen = gen;
	ev.role = role;
	ev.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev.dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (ev.family == AF_INET) {
		BPF_CORE_READ_INTO(&ev.saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO(&ev.daddr, sk, __sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&ev.saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&ev.daddr, sk, __sk_common.skc_v6_daddr);
	}
	bpf_get_current_comm(&ev.comm, sizeof(ev.comm));
	output(&ev, sizeof(ev));
}

static __always_inline void emit_close(struct conn_key *key, struct conn_state *st)
{
	struct weft_conn_event ev = {};
	ev.kind = EVENT_CONN_CLOSE;
	ev.tid = (__u32)bpf_get_current_pid_tgid();
	ev.ts_ns = bpf_ktime_get_ns();
	ev.tgid = key->tgid;
	ev.fd = key->fd;
	ev.gen = st->gen;
	/* A TLS generation's streams are the plaintext ones. */
	ev.bytes[0] = st->tls ? st->tls_offset[0] : st->offset[0];
	ev.bytes[1] = st->tls ? st->tls_offset[1] : st->offset[1];
	ev.tls = st->tls;
	output(&ev, sizeof(ev));
}

/* announce_process sends the current process's identity once: argv and
 * environment blocks read from its own memory, which is still there even
 * when the process will exit before user space could read /proc. */
static __always_inline void announce_process(__u32 tgid)
{
	__u8 yes = 1;
	if (bpf_map_update_elem(&procs_seen, &tgid, &yes, BPF_NOEXIST))
		return; /* already announced */
	__u32 cpu = bpf_get_smp_processor_id();
	struct scratch *s = bpf_map_lookup_elem(&scratch_buf, &cpu);
	if (!s)
		return;
	struct weft_proc_info_event *ev = (struct weft_proc_info_event *)s;
	ev->kind = EVENT_PROC_INFO;
	ev->tgid = tgid;
	ev->ts_ns = bpf_ktime_get_ns();
	bpf_get_current_comm(&ev->comm, sizeof(ev->comm));

	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	struct mm_struct *mm = BPF_CORE_READ(task, mm);
	__u64 arg_start = BPF_CORE_READ(mm, arg_start), arg_end = BPF_CORE_READ(mm, arg_end);
	__u64 env_start = BPF_CORE_READ(mm, env_start), env_end = BPF_CORE_READ(mm, env_end);
	__u8 *payload = (__u8 *)(ev + 1);

	__u64 an = arg_end > arg_start ? arg_end - arg_start : 0;
	if (an > MAX_ARGV)
		an = MAX_ARGV;
	asm volatile("%0 &= 0x1ff" : "+r"(an));
	if (an > MAX_ARGV || bpf_probe_read_user(payload, an, (void *)arg_start))
		an = 0;
	__u64 en = env_end > env_start ? env_end - env_start : 0;
	if (en > MAX_ENV)
		en = MAX_ENV;
	asm volatile("%0 &= 0x3fff" : "+r"(en));
	if (en > MAX_ENV || bpf_probe_read_user(payload + MAX_ARGV, en, (void *)env_start))
		en = 0;
	/* Close the hole between the two blocks so they travel back to back. */
	if (an < MAX_ARGV && en > 0) {
		__u64 off = an;
		asm volatile("%0 &= 0x1ff" : "+r"(off));
		if (off < MAX_ARGV && bpf_probe_read_kernel(payload + off, en, payload + MAX_ARGV))
			en = 0;
	}
	ev->argv_len = an;
	ev->env_len = en;
	__u64 size = an + en;
	asm volatile("%0 &= 0x7fff" : "+r"(size));
	output(ev, sizeof(*ev) + size);
}

/* current_goid reads the running goroutine's id (and its parent's) from
 * the g that Go keeps in thread-local storage. */
static __always_inline bool current_goid(struct go_offsets *o, __u64 *goid, __u64 *parent)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u64 fsbase = BPF_CORE_READ(task, thread.fsbase);
	__u64 g = 0;
	if (!fsbase || bpf_probe_read_user(&g, sizeof(g), (void *)(fsbase + (__s64)o->tls_g)) || !g)
		return false;
	if (bpf_probe_read_user(goid, sizeof(*goid), (void *)(g + o->goid)) || !*goid)
		return false;
	*parent = 0;
	if (o->parent_goid)
		bpf_probe_read_user(parent, sizeof(*parent), (void *)(g + o->parent_goid));
	return true;
}

/* goroutine_cause finds the last read of the running goroutine, else of
 * the goroutine that started it. */
static __always_inline bool goroutine_cause(struct go_offsets *o, __u32 tgid, struct cause *out)
{
	struct go_key k = {.tgid = tgid};
	__u64 parent = 0;
	if (!current_goid(o, &k.goid, &parent))
		return false;
	struct cause *c = bpf_map_lookup_elem(&go_cause, &k);
	if (!c && parent) {
		k.goid = parent;
		c = bpf_map_lookup_elem(&go_cause, &k);
	}
	if (!c)
		return false;
	*out = *c;
	out->kind = CAUSE_GOROUTINE;
	return true;
}

/* current_cause is what a request this thread starts now is attributed to. */
static __always_inline bool current_cause(__u64 id, struct cause *out)
{
	struct go_offsets *o = bpf_map_lookup_elem(&go_procs, &(__u32){id >> 32});
	if (o)
		return goroutine_cause(o, id >> 32, out);
	struct cause *c = bpf_task_storage_get(&thread_cause, bpf_get_current_task_btf(), 0, 0);
	if (!c || !c->kind)
		return false;
	*out = *c;
	return true;
}

/* remember_read makes a TCP read the cause of what this thread (or, in Go,
 * goroutine) writes next. */
static __always_inline void remember_read(__u64 id, struct conn_key *key, struct conn_state *st, __u64 ts)
{
	struct cause c = {.gen = st->gen, .ts = ts, .fd = key->fd, .kind = CAUSE_THREAD};
	struct go_offsets *o = bpf_map_lookup_elem(&go_procs, &key->tgid);
	if (!o) {
		struct cause *tc = bpf_task_storage_get(&thread_cause, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (tc)
			*tc = c;
		return;
	}
	struct go_key k = {.tgid = key->tgid};
	__u64 parent = 0;
	if (current_goid(o, &k.goid, &parent))
		bpf_map_update_elem(&go_cause, &k, &c, BPF_ANY);
}

/* egress_cause fills the cause of a write on a connection this process
 * did not accept: a Go hand-off left on the fd, the goroutine's or the
 * thread's last read, or for a connection's first write the read its
 * connect followed. */
static __always_inline void egress_cause(__u64 id, struct weft_data_event *ev, struct conn_key *key, struct conn_state *st)
{
	struct cause c = {};
	struct cause *h = bpf_map_lookup_elem(&fd_cause, key);
	if (h) {
		c = *h;
		bpf_map_delete_elem(&fd_cause, key);
	} else if (st->connect_cause.kind) {
		c = st->connect_cause;
		st->connect_cause.kind = CAUSE_NONE;
	} else if (!current_cause(id, &c)) {
		c.kind = CAUSE_NONE;
	}
	ev->cause_kind = c.kind;
	ev->cause_fd = c.fd;
	ev->cause_stream = c.stream;
	ev->cause_gen = c.gen;
	ev->cause_ts = c.ts;
}

/* ---- CPython asyncio tasks ---------------------------------------------- */

#define PY_MAX_THREADS 16
#define PY_MAX_FRAMES 24

static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;
	if (bpf_probe_read_user(&v, sizeof(v), (void *)addr))
		return 0;
	return v;
}

/* py_tstate finds the calling thread's PyThreadState. The GIL is released
 * around blocking socket calls, so the runtime's "current" thread state is
 * not it: the interpreter's list is walked for the one with this thread's
 * native id, once per thread. */
static __always_inline __u64 py_tstate(struct py_offsets *o, __u32 tid)
{
	struct py_thread_state *cached = bpf_task_storage_get(&py_thread, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (cached && cached->tstate && cached->runtime == o->runtime && (__u32)read_u64(cached->tstate + o->ts_native_tid) == tid)
		return cached->tstate;
	__u64 interp = read_u64(o->runtime + o->interp_main);
	if (!interp)
		return 0;
	__u64 ts = read_u64(interp + o->threads_head);
	for (int i = 0; i < PY_MAX_THREADS && ts; i++) {
		if ((__u32)read_u64(ts + o->ts_native_tid) == tid) {
			if (cached) {
				cached->tstate = ts;
				cached->runtime = o->runtime;
			}
			return ts;
		}
		ts = read_u64(ts + o->ts_next);
	}
	return 0;
}

/* py_task names the asyncio task the calling thread runs: the outermost
 * frame of the innermost run of coroutine frames (a task steps its
 * coroutine, which awaits others; below them sit the event loop's plain
 * frames). A coroutine's frame lives inside the coroutine object, so its
 * address is the task's for the task's life. 0: no coroutine runs (the
 * event loop's own reads and writes). */
static __always_inline __u64 py_task(struct py_offsets *o)
{
	__u64 ts = py_tstate(o, (__u32)bpf_get_current_pid_tgid());
	if (!ts)
		return 0;
	__u64 cframe = read_u64(ts + o->ts_cframe);
	if (!cframe)
		return 0;
	__u64 frame = read_u64(cframe + o->cframe_current);
	__u64 coro = 0;
	for (int i = 0; i < PY_MAX_FRAMES && frame; i++) {
		__u8 owner = 0;
		if (bpf_probe_read_user(&owner, sizeof(owner), (void *)(frame + o->frame_owner)))
			break;
		if (owner == o->owned_by_generator)
			coro = frame;
		else if (coro)
			break;
		frame = read_u64(frame + o->frame_previous);
	}
	return coro;
}

/* task_cause marks a TCP write of a CPython process with the asyncio task
 * that made it: calls and the responses of served requests alike, so user
 * space can tell which request a call was made for. */
static __always_inline void task_cause(__u32 tgid, struct weft_data_event *ev)
{
	struct py_offsets *o = bpf_map_lookup_elem(&py_procs, &tgid);
	if (!o)
		return;
	__u64 t = py_task(o);
	if (!t)
		return;
	ev->cause_kind = CAUSE_TASK;
	ev->cause_task = t;
}

/* track starts following a socket fd that connect or accept just made. */
static __always_inline void track(__s32 fd, __u16 role)
{
	struct file *f = fd_file(fd);
	struct socket *sock = file_socket(f);
	if (!sock)
		return;
	__u32 proto = 0;
	struct sock *sk = inet_sock_of(sock, &proto);
	if (!sk)
		return;
	struct conn_key key = {.tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd};
	struct conn_state *old = bpf_map_lookup_elem(&conns, &key);
	if (old)
		emit_close(&key, old);
	struct conn_state st = {.gen = bpf_ktime_get_ns(), .sock = (__u64)sock, .file = (__u64)f, .sk = (__u64)sk, .proto = proto, .role = role};
	if (role == ROLE_CLIENT && current_cause(bpf_get_current_pid_tgid(), &st.connect_cause))
		st.connect_cause.kind = CAUSE_CONNECT;
	bpf_map_update_elem(&conns, &key, &st, BPF_ANY);
	announce_process(key.tgid);
	emit_open(&key, st.gen, sk, role, proto, 0);
}

/* lookup_conn returns the state of the TCP connection behind fd, starting
 * to follow one that predates weft (role unknown). *skp gets its sock. */
static __always_inline struct conn_state *lookup_conn(struct conn_key *key, struct sock **skp)
{
	struct file *f = fd_file(key->fd);
	if (!f)
		return NULL;
	struct conn_state *st = bpf_map_lookup_elem(&conns, key);
	/* The fd still holds the file seen last, and that file still the
	 * socket (a freed file's memory is soon another file's): two loads. */
	if (st && st->file == (__u64)f &&
	    (__u64)((struct file *)bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file)))->private_data == st->sock) {
		*skp = (struct sock *)st->sk;
		return st;
	}
	struct socket *sock = file_socket(f);
	if (!sock)
		return NULL;
	if (st && st->sock == (__u64)sock) {
		st->file = (__u64)f;
		*skp = (struct sock *)st->sk;
		return st;
	}
	__u32 proto = 0;
	struct sock *sk = inet_sock_of(sock, &proto);
	if (!sk)
		return NULL;
	if (st)
		emit_close(key, st); /* fd reused without a close we saw */
	struct conn_state fresh = {.gen = bpf_ktime_get_ns(), .sock = (__u64)sock, .file = (__u64)f, .sk = (__u64)sk, .proto = proto};
	bpf_map_update_elem(&conns, key, &fresh, BPF_ANY);
	announce_process(key->tgid);
	emit_open(key, fresh.gen, sk, ROLE_UNKNOWN, proto, 0);
	*skp = sk;
	return bpf_map_lookup_elem(&conns, key);
}

static __always_inline void stash_addr(__s32 fd, __u64 buf, __u32 iovcnt, __u8 op, __u8 dir, __u64 addr)
{
	if (is_self(bpf_get_current_pid_tgid()))
		return;
	struct args *a = bpf_task_storage_get(&thread_args, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!a)
		return;
	a->buf = buf;
	a->ts = bpf_ktime_get_ns();
	a->addr = addr;
	a->fd = fd;
	a->iovcnt = iovcnt;
	a->op = op;
	a->dir = dir;
	a->valid = 1;
}

/* unstash takes what this thread's enter of op stashed: false when there
 * is none (the enter ran before weft attached, or was skipped). */
static __always_inline bool unstash(__u8 op, struct args *out)
{
	struct args *a = bpf_task_storage_get(&thread_args, bpf_get_current_task_btf(), 0, 0);
	if (!a || !a->valid)
		return false;
	a->valid = 0;
	if (a->op != op)
		return false;
	*out = *a;
	return true;
}

static __always_inline void stash(__s32 fd, __u64 buf, __u32 iovcnt, __u8 op, __u8 dir)
{
	stash_addr(fd, buf, iovcnt, op, dir, 0);
}

/* copy_iov copies up to `want` (<= cap) bytes from an iovec array into
 * data, which has room for 2 * cap bytes: a copy at any offset below cap
 * of up to cap bytes is then provably in bounds. cap is a power of two. */
static __always_inline __u32 copy_iov(__u8 *data, __u64 iov_ptr, __u32 iovcnt, __u32 want, const __u32 cap)
{
	__u32 off = 0;
	struct iovec *iov = (struct iovec *)iov_ptr;
#pragma unroll
	for (int i = 0; i < MAX_IOV; i++) {
		if (i >= iovcnt || off >= want)
			break;
		struct iovec v;
		if (bpf_probe_read_user(&v, sizeof(v), &iov[i]))
			break;
		__u64 n = v.iov_len;
		if (n > want - off)
			n = want - off;
		if (off >= cap)
			break;
		if (n > cap)
			n = cap;
		if (n == 0)
			continue;
		/* off < cap already; the mask (hidden from the compiler, which
		 * would drop it) makes the bound visible to the verifier. */
		__u64 at = off;
		asm volatile("" : "+r"(at));
		at &= cap - 1;
		asm volatile("" : "+r"(n));
		if (n > cap)
			break;
		if (bpf_probe_read_user(&data[at], n, v.iov_base))
			break;
		off += n;
	}
	return off;
}

/* peer_from_sockaddr fills a UDP event's peer from a user sockaddr. */
static __always_inline void peer_from_sockaddr(struct weft_data_event *ev, __u64 uaddr)
{
	struct sockaddr_in6 sa = {};
	if (bpf_probe_read_user(&sa, sizeof(sa), (void *)uaddr))
		return;
	if (sa.sin6_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;
		__builtin_memcpy(ev->peer, &in->sin_addr, 4);
	} else if (sa.sin6_family == AF_INET6) {
		__builtin_memcpy(ev->peer, &sa.sin6_addr, 16);
	} else {
		return;
	}
	ev->peer_family = sa.sin6_family;
	ev->peer_port = bpf_ntohs(sa.sin6_port);
}

/* peer_from_sock fills a UDP event's peer from a connected socket. */
static __always_inline void peer_from_sock(struct weft_data_event *ev, struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	ev->peer_family = family;
	ev->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET)
		BPF_CORE_READ_INTO(&ev->peer, sk, __sk_common.skc_daddr);
	else
		BPF_CORE_READ_INTO(&ev->peer, sk, __sk_common.skc_v6_daddr);
}

/* fill_data_event writes a data event's header (all of it: ring buffer
 * memory is not zeroed) and its cause. */
static __always_inline void fill_data_event(struct weft_data_event *ev, struct args *args, struct conn_key *key,
					    struct conn_state *st, struct sock *sk, __u32 len, __u64 offset,
					    __u64 uaddr, __u8 tls)
{
	__u8 dir = args->dir & 1;
	__u64 id = bpf_get_current_pid_tgid();
	ev->kind = EVENT_DATA;
	ev->tid = (__u32)id;
	ev->ts_enter_ns = args->ts;
	ev->ts_exit_ns = bpf_ktime_get_ns();
	ev->tgid = key->tgid;
	ev->fd = key->fd;
	ev->gen = st->gen;
	ev->offset = offset;
	ev->len = len;
	ev->captured = 0;
	ev->dir = dir;
	ev->op = args->op;
	ev->proto = st->proto;
	ev->tls = tls;
	ev->cause_kind = CAUSE_NONE;
	ev->cause_fd = 0;
	ev->cause_stream = 0;
	ev->cause_gen = 0;
	ev->cause_ts = 0;
	ev->cause_task = 0;
	ev->peer_family = 0;
	ev->peer_port = 0;
	__builtin_memset(ev->peer, 0, sizeof(ev->peer));
	if (tls) {
		/* Both ends see the same plaintext offsets: they stand in for
		 * TCP sequence numbers when joining the two ends. */
		ev->seq = (__u32)offset;
	} else if (st->proto == PROTO_TCP) {
		struct tcp_sock *tp = bpf_rdonly_cast(sk, bpf_core_type_id_kernel(struct tcp_sock));
		__u32 seq = dir == DIR_EGRESS ? tp->write_seq : tp->copied_seq;
		ev->seq = seq - len;
	} else {
		ev->seq = 0;
		if (uaddr)
			peer_from_sockaddr(ev, uaddr);
		if (!ev->peer_family)
			peer_from_sock(ev, sk);
	}

	if (dir == DIR_EGRESS) {
		if (st->role != ROLE_SERVER)
			egress_cause(id, ev, key, st);
		if (st->proto == PROTO_TCP)
			task_cause(key->tgid, ev);
	} else if (st->proto == PROTO_TCP) {
		remember_read(id, key, st, ev->ts_exit_ns);
	}
}

/* send_data reserves a data event with room for cap payload bytes (2 * cap
 * for an iovec array, see copy_iov), fills it and copies the payload
 * straight from user memory into it: one copy, no scratch buffer. cap is a
 * constant at each call site, as the reservation's size must be. */
static __always_inline void send_data(const __u32 cap, struct args *args, struct conn_key *key, struct conn_state *st,
				      struct sock *sk, __u32 len, __u64 offset, __u64 buf, __u32 iovcnt,
				      __u64 uaddr, __u8 tls, __u32 want)
{
	struct weft_data_event *ev;
	if (iovcnt)
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + 2 * cap, 0);
	else
		ev = bpf_ringbuf_reserve(&events, sizeof(*ev) + cap, 0);
	if (!ev) {
		count_lost();
		return;
	}
	fill_data_event(ev, args, key, st, sk, len, offset, uaddr, tls);
	__u8 *data = (__u8 *)(ev + 1);
	__u32 got = 0;
	if (want > cap)
		want = cap;
	if (iovcnt) {
		got = copy_iov(data, buf, iovcnt, want, cap);
	} else if (want > 0) {
		__u64 w = want;
		asm volatile("" : "+r"(w));
		if (w <= cap && bpf_probe_read_user(data, w, (void *)buf) == 0)
			got = w;
	}
	ev->captured = got;
	bpf_ringbuf_submit(ev, wakeup_flags());
}

/* emit_chunk sends one data event for `len` bytes that moved through buf
 * (a plain buffer, or an iovec array when iovcnt > 0), in the smallest of a
 * few reservation sizes that holds what is captured. */
static __always_inline void emit_chunk(struct args *args, struct conn_key *key, struct conn_state *st,
				       struct sock *sk, __u32 len, __u64 buf, __u32 iovcnt, __u64 uaddr, __u8 tls)
{
	__u8 dir = args->dir & 1;
	__u64 offset = tls ? __sync_fetch_and_add(&st->tls_offset[dir], (__u64)len)
			   : __sync_fetch_and_add(&st->offset[dir], (__u64)len);

	__u32 want = capture_size;
	if (want > MAX_CAPTURE)
		want = MAX_CAPTURE;
	if (len < want)
		want = len;
	if (args->op == WEFT_OP_SENDFILE)
		want = 0; /* the bytes come from a file, not user memory */
	if (want == 0)
		send_data(0, args, key, st, sk, len, offset, buf, 0, uaddr, tls, 0);
	else if (want <= 256)
		send_data(256, args, key, st, sk, len, offset, buf, iovcnt, uaddr, tls, want);
	else if (want <= 1024)
		send_data(1024, args, key, st, sk, len, offset, buf, iovcnt, uaddr, tls, want);
	else if (want <= 4096)
		send_data(4096, args, key, st, sk, len, offset, buf, iovcnt, uaddr, tls, want);
	else
		send_data(MAX_CAPTURE, args, key, st, sk, len, offset, buf, iovcnt, uaddr, tls, want);
}

/* ---- OpenSSL ------------------------------------------------------------ */

/* An SSL_read/SSL_write in progress on a thread. */
struct ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 out; /* size_t * of the _ex variants, else 0 */
	__u64 ts;
	__u8 dir;
	__u8 valid; /* set by the uprobe, cleared by the uretprobe */
	__u8 _pad[6];
};

/* Per thread, in task storage: every socket syscall's exit asks whether
 * it runs inside an SSL call, and a task storage load is cheaper than a
 * hash lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ssl_call);
} ssl_calls SEC(".maps");

/* SSL* -> the socket fd its nested syscalls used, per process. */
struct ssl_key {
	__u64 ssl;
	__u32 tgid;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct ssl_key);
	__type(value, __s32);
} ssl_fds SEC(".maps");

/* SSL calls whose socket was never learned, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} ssl_unmapped SEC(".maps");

/* mark_tls starts the plaintext generation of a connection the first time
 * OpenSSL is seen on it: user space ends the ciphertext generation and
 * parses the plaintext one from offset 0. */
static __always_inline void mark_tls(struct conn_key *key, struct conn_state *st, struct sock *sk)
{
	if (st->tls)
		return;
	st->tls = 1;
	st->gen = bpf_ktime_get_ns();
	st->tls_offset[0] = 0;
	st->tls_offset[1] = 0;
	emit_open(key, st->gen, sk, st->role, st->proto, 1);
}

/* ssl_nested reports whether this socket syscall runs inside SSL_read or
 * SSL_write on the same thread; if so it ties the SSL* to the fd. */
static __always_inline bool ssl_nested(__u64 id, struct conn_key *key, struct conn_state *st, struct sock *sk)
{
	struct ssl_call *c = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0, 0);
	if (!c || !c->valid)
		return st->tls != 0;
	struct ssl_key k = {.ssl = c->ssl, .tgid = key->tgid};
	__s32 fd = key->fd;
	bpf_map_update_elem(&ssl_fds, &k, &fd, BPF_ANY);
	if (st->proto == PROTO_TCP)
		mark_tls(key, st, sk);
	return st->tls != 0;
}

static __always_inline void on_data_exit(long ret, __u8 op)
{
	struct args args;
	if (!unstash(op, &args) || ret <= 0)
		return;
	__u64 id = bpf_get_current_pid_tgid();

	struct conn_key key = {.tgid = id >> 32, .fd = args.fd};
	struct sock *sk = NULL;
	struct conn_state *st = lookup_conn(&key, &sk);
	if (!st || !sk)
		return;
	if (ssl_nested(id, &key, st, sk))
		return; /* ciphertext: the uprobes send the plaintext */
	emit_chunk(&args, &key, st, sk, (__u32)ret, args.buf, args.iovcnt, args.addr, 0);
}

/* on_mmsg_exit sends one data event per message of sendmmsg/recvmmsg (ret
 * is the message count). Only each message's first iovec is captured:
 * datagram APIs are used with one buffer per message. */
static __always_inline void on_mmsg_exit(long ret, __u8 op)
{
	struct args args;
	if (!unstash(op, &args) || ret <= 0)
		return;
	__u64 id = bpf_get_current_pid_tgid();

	struct conn_key key = {.tgid = id >> 32, .fd = args.fd};
	struct sock *sk = NULL;
	struct conn_state *st = lookup_conn(&key, &sk);
	if (!st || !sk || st->tls)
		return;
	struct mmsghdr *vec = (struct mmsghdr *)args.buf;
	for (int i = 0; i < MAX_MMSG; i++) {
		if (i >= ret)
			break;
		struct mmsghdr m;
		if (bpf_probe_read_user(&m, sizeof(m), &vec[i]))
			break;
		if (m.msg_len == 0 || m.msg_hdr.msg_iovlen == 0)
			continue;
		emit_chunk(&args, &key, st, sk, m.msg_len, (__u64)m.msg_hdr.msg_iov, 1, (__u64)m.msg_hdr.msg_name, 0);
	}
}

/* ---- read / write family ---------------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_read")
int enter_read(struct trace_event_raw_sys_enter *ctx)
{
	stash(ctx->args[0], ctx->args[1], 0, WEFT_OP_READ, DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int enter_write(struct trace_event_raw_sys_enter *ctx)
{
	stash(ctx->args[0], ctx->args[1], 0, WEFT_OP_WRITE, DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_readv")
int enter_readv(struct trace_event_raw_sys_enter *ctx)
{
	stash(ctx->args[0], ctx->args[1], ctx->args[2], WEFT_OP_READV, DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int enter_writev(struct trace_event_raw_sys_enter *ctx)
{
	stash(ctx->args[0], ctx->args[1], ctx->args[2], WEFT_OP_WRITEV, DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvfrom")
int enter_recvfrom(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[3] & MSG_PEEK)
		return 0;
	stash_addr(ctx->args[0], ctx->args[1], 0, WEFT_OP_RECVFROM, DIR_INGRESS, ctx->args[4]);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendto")
int enter_sendto(struct trace_event_raw_sys_enter *ctx)
{
	stash_addr(ctx->args[0], ctx->args[1], 0, WEFT_OP_SENDTO, DIR_EGRESS, ctx->args[4]);
	return 0;
}

static __always_inline void stash_msg(struct trace_event_raw_sys_enter *ctx, __u8 op, __u8 dir)
{
	struct user_msghdr msg;
	if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ctx->args[1]))
		return;
	__u32 n = msg.msg_iovlen > MAX_IOV ? MAX_IOV : msg.msg_iovlen;
	if (n == 0)
		return;
	stash_addr(ctx->args[0], (__u64)msg.msg_iov, n, op, dir, (__u64)msg.msg_name);
}

SEC("tracepoint/syscalls/sys_enter_recvmsg")
int enter_recvmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[2] & MSG_PEEK)
		return 0;
	stash_msg(ctx, WEFT_OP_RECVMSG, DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmsg")
int enter_sendmsg(struct trace_event_raw_sys_enter *ctx)
{
	stash_msg(ctx, WEFT_OP_SENDMSG, DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_recvmmsg")
int enter_recvmmsg(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->args[3] & MSG_PEEK)
		return 0;
	stash(ctx->args[0], ctx->args[1], ctx->args[2], WEFT_OP_RECVMMSG, DIR_INGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendmmsg")
int enter_sendmmsg(struct trace_event_raw_sys_enter *ctx)
{
	stash(ctx->args[0], ctx->args[1], ctx->args[2], WEFT_OP_SENDMMSG, DIR_EGRESS);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int enter_sendfile(struct trace_event_raw_sys_enter *ctx)
{
	stash(ctx->args[0], 0, 0, WEFT_OP_SENDFILE, DIR_EGRESS);
	return 0;
}

/* All data syscalls share one exit path: the stashed args say which. */
SEC("tracepoint/syscalls/sys_exit_read")
int exit_read(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_READ);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int exit_write(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_WRITE);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_readv")
int exit_readv(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_READV);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_writev")
int exit_writev(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_WRITEV);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int exit_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_RECVFROM);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int exit_sendto(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_SENDTO);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmsg")
int exit_recvmsg(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_RECVMSG);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmsg")
int exit_sendmsg(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_SENDMSG);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvmmsg")
int exit_recvmmsg(struct trace_event_raw_sys_exit *ctx)
{
	on_mmsg_exit(ctx->ret, WEFT_OP_RECVMMSG);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int exit_sendmmsg(struct trace_event_raw_sys_exit *ctx)
{
	on_mmsg_exit(ctx->ret, WEFT_OP_SENDMMSG);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int exit_sendfile(struct trace_event_raw_sys_exit *ctx)
{
	on_data_exit(ctx->ret, WEFT_OP_SENDFILE);
	return 0;
}

/* ---- connection life ---------------------------------------------------- */

SEC("tracepoint/syscalls/sys_enter_connect")
int enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	stash(ctx->args[0], 0, 0, OP_CONNECT, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct args a;
	if (!unstash(OP_CONNECT, &a))
		return 0;
	if (ctx->ret == 0 || ctx->ret == -EINPROGRESS)
		track(a.fd, ROLE_CLIENT);
	return 0;
}

static __always_inline void on_accept_exit(long ret)
{
	if (ret < 0 || is_self(bpf_get_current_pid_tgid()))
		return;
	track((__s32)ret, ROLE_SERVER);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	on_accept_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	on_accept_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct conn_key key = {.tgid = id >> 32, .fd = (__s32)ctx->args[0]};
	struct conn_state *st = bpf_map_lookup_elem(&conns, &key);
	if (!st)
		return 0;
	emit_close(&key, st);
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* ---- event loop boundaries ---------------------------------------------- */

/* A thread that waits for events starts a new wake-up: what it read before
 * caused nothing it does after. */
static __always_inline void loop_wait(void)
{
	struct cause *c = bpf_task_storage_get(&thread_cause, bpf_get_current_task_btf(), 0, 0);
	if (c)
		c->kind = CAUSE_NONE;
}

SEC("tracepoint/syscalls/sys_enter_epoll_wait")
int enter_epoll_wait(void *ctx) { loop_wait(); return 0; }

SEC("tracepoint/syscalls/sys_enter_epoll_pwait")
int enter_epoll_pwait(void *ctx) { loop_wait(); return 0; }

SEC("tracepoint/syscalls/sys_enter_epoll_pwait2")
int enter_epoll_pwait2(void *ctx) { loop_wait(); return 0; }

SEC("tracepoint/syscalls/sys_enter_poll")
int enter_poll(void *ctx) { loop_wait(); return 0; }

SEC("tracepoint/syscalls/sys_enter_ppoll")
int enter_ppoll(void *ctx) { loop_wait(); return 0; }

SEC("tracepoint/syscalls/sys_enter_select")
int enter_select(void *ctx) { loop_wait(); return 0; }

SEC("tracepoint/syscalls/sys_enter_pselect6")
int enter_pselect6(void *ctx) { loop_wait(); return 0; }

/* ---- Go request hand-off ------------------------------------------------ */

/* net/http.(*persistConn).roundTrip runs on the goroutine that makes the
 * request and hands it to the connection's writeLoop goroutine: leave the
 * caller's cause on the connection's fd for that write. Go's register ABI
 * passes the receiver in AX. */
/* go_conn_fd reads the fd behind the net.Conn interface at addr: its data
 * word points at the *net.TCPConn, whose first word is the *netFD. */
static __always_inline __s32 go_conn_fd(struct go_offsets *o, __u64 addr)
{
	__u64 tcpconn = 0, netfd = 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&tcpconn, sizeof(tcpconn), (void *)(addr + 8)) || !tcpconn)
		return -1;
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)tcpconn) || !netfd)
		return -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + o->netfd_sysfd)))
		return -1;
	if (sysfd < 0 || sysfd > (1 << 24))
		return -1;
	return (__s32)sysfd;
}

SEC("uprobe/go_persistconn_roundtrip")
int uprobe_go_roundtrip(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct go_offsets *o = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!o)
		return 0;
	__s32 sysfd = go_conn_fd(o, PT_REGS_RC(ctx) + o->pconn_conn);
	if (sysfd < 0)
		return 0;
	struct conn_key key = {.tgid = tgid, .fd = sysfd};
	struct cause c = {};
	if (goroutine_cause(o, tgid, &c))
		bpf_map_update_elem(&fd_cause, &key, &c, BPF_ANY);
	else
		bpf_map_delete_elem(&fd_cause, &key);
	return 0;
}

/* go_conn_state finds the connection behind the net.Conn at addr in this
 * process, or NULL when it is not one weft follows (a TLS wrapper, say). */
static __always_inline struct conn_state *go_conn_state(struct go_offsets *o, __u32 tgid, __u64 addr, __s32 *fd)
{
	*fd = go_conn_fd(o, addr);
	if (*fd < 0)
		return NULL;
	struct conn_key key = {.tgid = tgid, .fd = *fd};
	return bpf_map_lookup_elem(&conns, &key);
}

/* grpc-go: google.golang.org/grpc.(*Server).handleStream(t ServerTransport,
 * stream *ServerStream) starts on the goroutine that runs the handler. The
 * register ABI passes s in AX, t's two interface words in BX and CX (CX:
 * the *http2Server) and stream in DI. The goroutine's cause becomes that
 * stream of that connection: what the handler (or a goroutine it starts)
 * writes is attributed to it. One trap per call served. */
SEC("uprobe/go_grpc_handle_stream")
int uprobe_go_grpc_handle_stream(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_offsets *o = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!o || !o->grpc_srv_stream_id)
		return 0;
	__s32 fd;
	struct conn_state *st = go_conn_state(o, tgid, ctx->cx + o->grpc_srv_conn, &fd);
	if (!st)
		return 0;
	__u32 sid = 0;
	if (bpf_probe_read_user(&sid, sizeof(sid), (void *)(ctx->di + o->grpc_srv_stream_id)) || !sid)
		return 0;
	struct go_key k = {.tgid = tgid};
	__u64 parent = 0;
	if (!current_goid(o, &k.goid, &parent))
		return 0;
	struct cause c = {.gen = st->gen, .ts = bpf_ktime_get_ns(), .fd = fd, .kind = CAUSE_GOROUTINE, .stream = sid};
	bpf_map_update_elem(&go_cause, &k, &c, BPF_ANY);
	return 0;
}

/* grpc-go: google.golang.org/grpc/internal/transport.(*http2Client).write(s
 * *ClientStream, ...) runs on the goroutine sending a call's message (t in
 * AX, s in BX); the connection's loopy writer writes its frames later,
 * several calls at a time. Tell user space which cause that stream has.
 * One trap per message sent. */
SEC("uprobe/go_grpc_client_write")
int uprobe_go_grpc_client_write(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_offsets *o = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!o || !o->grpc_cli_stream_id)
		return 0;
	struct cause c = {};
	if (!goroutine_cause(o, tgid, &c))
		return 0;
	__s32 fd;
	struct conn_state *st = go_conn_state(o, tgid, ctx->ax + o->grpc_cli_conn, &fd);
	if (!st)
		return 0;
	struct weft_stream_event ev = {};
	if (bpf_probe_read_user(&ev.stream, sizeof(ev.stream), (void *)(ctx->bx + o->grpc_cli_stream_id)) || !ev.stream)
		return 0;
	ev.kind = EVENT_STREAM_CAUSE;
	ev.tgid = tgid;
	ev.fd = fd;
	ev.gen = st->gen;
	ev.cause_kind = c.kind;
	ev.cause_fd = c.fd;
	ev.cause_gen = c.gen;
	ev.cause_ts = c.ts;
	ev.cause_stream = c.stream;
	output(&ev, sizeof(ev));
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if ((__u32)id != (__u32)(id >> 32) || is_self(id))
		return 0; /* a thread, not the process */
	__u32 tgid = id >> 32;
	bpf_map_delete_elem(&procs_seen, &tgid);
	bpf_map_delete_elem(&go_procs, &tgid);
	struct weft_proc_event ev = {.kind = EVENT_PROC_EXIT, .tgid = id >> 32, .ts_ns = bpf_ktime_get_ns()};
	output(&ev, sizeof(ev));
	return 0;
}

/* After exec the process is another program: announce it again. */
SEC("tracepoint/sched/sched_process_exec")
int process_exec(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	bpf_map_delete_elem(&procs_seen, &tgid);
	bpf_map_delete_elem(&go_procs, &tgid);
	if (!is_self(id))
		announce_process(tgid); /* user space inspects the new binary now */
	return 0;
}

static __always_inline int ssl_enter(struct pt_regs *ctx, __u8 dir, bool ex)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (is_self(id))
		return 0;
	struct ssl_call *c = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!c)
		return 0;
	c->ssl = PT_REGS_PARM1(ctx);
	c->buf = PT_REGS_PARM2(ctx);
	c->out = ex ? PT_REGS_PARM4(ctx) : 0;
	c->ts = bpf_ktime_get_ns();
	c->dir = dir;
	c->valid = 1;
	return 0;
}

static __always_inline int ssl_exit(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct ssl_call *p = bpf_task_storage_get(&ssl_calls, bpf_get_current_task_btf(), 0, 0);
	if (!p || !p->valid)
		return 0;
	struct ssl_call c = *p;
	p->valid = 0;

	/* SSL_read/SSL_write return int: take the low 32 bits only, or -1
	 * (WANT_READ on a non-blocking socket) reads as 4294967295. */
	int ret = (int)PT_REGS_RC(ctx);
	__u64 len = 0;
	if (c.out) {
		if (ret != 1 || bpf_probe_read_user(&len, sizeof(len), (void *)c.out))
			return 0;
	} else {
		if (ret <= 0)
			return 0;
		len = ret;
	}
	if (len == 0)
		return 0;
	struct ssl_key k = {.ssl = c.ssl, .tgid = id >> 32};
	__s32 *fd = bpf_map_lookup_elem(&ssl_fds, &k);
	if (!fd) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&ssl_unmapped, &zero);
		if (n)
			*n += 1;
		return 0;
	}
	struct conn_key key = {.tgid = id >> 32, .fd = *fd};
	struct sock *sk = NULL;
	struct conn_state *st = lookup_conn(&key, &sk);
	if (!st || !sk || st->proto != PROTO_TCP)
		return 0;
	mark_tls(&key, st, sk);
	struct args a = {.ts = c.ts, .op = c.dir == DIR_EGRESS ? WEFT_OP_SSL_WRITE : WEFT_OP_SSL_READ, .dir = c.dir};
	emit_chunk(&a, &key, st, sk, (__u32)len, c.buf, 0, 0, 1);
	return 0;
}

SEC("uprobe/SSL_write")
int uprobe_ssl_write(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_EGRESS, false); }

SEC("uretprobe/SSL_write")
int uretprobe_ssl_write(struct pt_regs *ctx) { return ssl_exit(ctx); }

SEC("uprobe/SSL_read")
int uprobe_ssl_read(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_INGRESS, false); }

SEC("uretprobe/SSL_read")
int uretprobe_ssl_read(struct pt_regs *ctx) { return ssl_exit(ctx); }

SEC("uprobe/SSL_write_ex")
int uprobe_ssl_write_ex(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_EGRESS, true); }

SEC("uretprobe/SSL_write_ex")
int uretprobe_ssl_write_ex(struct pt_regs *ctx) { return ssl_exit(ctx); }

SEC("uprobe/SSL_read_ex")
int uprobe_ssl_read_ex(struct pt_regs *ctx) { return ssl_enter(ctx, DIR_INGRESS, true); }

SEC("uretprobe/SSL_read_ex")
int uretprobe_ssl_read_ex(struct pt_regs *ctx) { return ssl_exit(ctx); }

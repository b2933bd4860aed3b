/* Event layouts shared with user space. bpf2go generates the Go structs from
 * these types' BTF (-type), so nothing here is mirrored by hand. Fields are
 * fixed width with explicit padding: -Wpadded is an error inside this file,
 * so user space can decode events in place. */
#pragma once

#pragma clang diagnostic push
#pragma clang diagnostic error "-Wpadded"

enum weft_event_kind {
	EVENT_CONN_OPEN = 1,
	EVENT_CONN_CLOSE = 2,
	EVENT_DATA = 3,
	EVENT_PROC_EXIT = 4,
	EVENT_PROC_INFO = 5,
	EVENT_STREAM_CAUSE = 6,
};

enum weft_role {
	ROLE_UNKNOWN = 0,
	ROLE_CLIENT = 1,
	ROLE_SERVER = 2,
};

enum weft_direction {
	DIR_EGRESS = 0,
	DIR_INGRESS = 1,
};

/* The syscall that moved a data event's bytes; user space only logs it. */
enum weft_data_op {
	WEFT_OP_READ = 1,
	WEFT_OP_WRITE,
	WEFT_OP_READV,
	WEFT_OP_WRITEV,
	WEFT_OP_RECVFROM,
	WEFT_OP_SENDTO,
	WEFT_OP_RECVMSG,
	WEFT_OP_SENDMSG,
	WEFT_OP_SENDFILE,
	WEFT_OP_RECVMMSG,
	WEFT_OP_SENDMMSG,
	WEFT_OP_SSL_READ,
	WEFT_OP_SSL_WRITE,
};

/* What caused an egress: the read a request is attributed to. */
enum weft_cause_kind {
	CAUSE_NONE = 0,
	/* the thread's last socket read since its event loop last woke */
	CAUSE_THREAD = 1,
	/* the read the thread had done when it connected this socket */
	CAUSE_CONNECT = 2,
	/* the last read of the goroutine (or its parent) that made or
	 * handed off the request (Go) */
	CAUSE_GOROUTINE = 3,
	/* the asyncio task (CPython) that wrote, in cause_task: on a client
	 * connection the call, on a served one the response; user space pairs
	 * them */
	CAUSE_TASK = 4,
};

/* A cause whose cause_stream is set names an HTTP/2 stream of connection
 * cause_fd#cause_gen (the grpc-go server stream a handler goroutine
 * serves), not a read. */

/* Transport of a connection. */
enum weft_proto {
	PROTO_TCP = 6,
	PROTO_UDP = 17,
};

/* EVENT_CONN_OPEN and EVENT_CONN_CLOSE. */
struct weft_conn_event {
	__u32 kind;
	__u32 tid;
	__u64 ts_ns;
	__u32 tgid;
	__s32 fd;
	__u64 gen;
	__u64 bytes[2]; /* per direction, at close */
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport; /* host byte order */
	__u16 dport;
	__u16 family;
	__u16 role;
	__u8 comm[16];
	__u16 proto; /* enum weft_proto */
	__u16 tls;   /* 1: a new generation carrying TLS plaintext from OpenSSL */
	__u32 _pad2;
};

/* EVENT_DATA header; `captured` bytes of payload follow it. */
struct weft_data_event {
	__u32 kind;
	__u32 tid;
	__u64 ts_enter_ns;
	__u64 ts_exit_ns;
	__u32 tgid;
	__s32 fd;
	__u64 gen;
	__u64 offset; /* of the first byte within this direction's stream */
	__u32 len;    /* bytes the syscall moved */
	__u32 captured;
	__u32 seq;    /* TCP sequence number of the first byte */
	__u8 dir;
	__u8 op;
	__u8 proto;   /* enum weft_proto */
	__u8 tls;     /* 1: plaintext from SSL_read/SSL_write, not socket bytes */
	/* UDP: the datagram's remote end (from sockaddr or the connected peer). */
	__u8 peer[16];
	__u16 peer_port; /* host byte order */
	__u16 peer_family;
	/* Egress only: the ingress read (connection cause_fd#cause_gen,
	 * returned at cause_ts) this write is attributed to, by cause_kind. */
	__u32 cause_kind; /* enum weft_cause_kind */
	__s32 cause_fd;
	__u32 cause_stream; /* HTTP/2 stream id, 0: none */
	__u64 cause_gen;
	__u64 cause_ts;
	/* CAUSE_TASK: the running coroutine's frame address, naming its task
	 * within the process. */
	__u64 cause_task;
};

/* EVENT_STREAM_CAUSE: a Go program wrote on HTTP/2 stream `stream` of
 * connection fd#gen (grpc-go's client) from a goroutine whose cause is
 * cause_*: user space attributes that stream's exchange to it. */
struct weft_stream_event {
	__u32 kind;
	__u32 tgid;
	__s32 fd;
	__u32 stream;
	__u64 gen;
	__u32 cause_kind;
	__s32 cause_fd;
	__u64 cause_gen;
	__u64 cause_ts;
	__u32 cause_stream;
	__u32 _pad;
};

/* EVENT_PROC_EXIT: every connection of tgid is gone. */
struct weft_proc_event {
	__u32 kind;
	__u32 tgid;
	__u64 ts_ns;
};

/* EVENT_PROC_INFO: sent once per process (and again after exec) when its
 * first connection is seen, from the process's own context, so user space
 * learns its identity even if it exits before /proc can be read. argv_len
 * bytes of the argument block follow, then env_len bytes of the environment
 * block (both NUL-separated, possibly cut short). User space keeps only
 * argv[0] and the OTEL_ variables it names; nothing else is retained. */
struct weft_proc_info_event {
	__u32 kind;
	__u32 tgid;
	__u64 ts_ns;
	__u32 argv_len;
	__u32 env_len;
	__u8 comm[16];
};

#pragma clang diagnostic pop

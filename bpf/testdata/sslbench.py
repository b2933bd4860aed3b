# Round trips of 32 bytes over a TLS loopback connection inside one process
# (client and server both OpenSSL through python's ssl module); prints the
# mean ns per round trip. Used by BenchmarkOpenSSLUprobes.
import socket, ssl, sys, threading, time
n = int(sys.argv[1]); cert, key = sys.argv[2], sys.argv[3]
sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER); sctx.load_cert_chain(cert, key)
cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); cctx.check_hostname = False; cctx.verify_mode = ssl.CERT_NONE
ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
def serve():
    c, _ = ls.accept(); s = sctx.wrap_socket(c, server_side=True)
    for _ in range(n):
        d = s.recv(64); s.sendall(d)
    s.close()
t = threading.Thread(target=serve); t.start()
c = cctx.wrap_socket(socket.create_connection(ls.getsockname()))
msg = b"x" * 32
t0 = time.perf_counter_ns()
for _ in range(n):
    c.sendall(msg); c.recv(64)
t1 = time.perf_counter_ns()
c.close(); t.join()
print((t1 - t0) / n)

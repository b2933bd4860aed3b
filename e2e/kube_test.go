package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The Kubernetes test runs a real control plane — Debian's etcd and the
// pinned kube-apiserver (make kube-apiserver) — applies
// deploy/kubernetes to it, and runs a second weft as the manifests'
// ServiceAccount (so with exactly their RBAC) against pod objects whose
// containers are real processes in real cgroups shaped as the kubelet makes
// them. That weft writes JSON lines, not OTLP, so the suite's agent and it
// never trace each other's exports into Jaeger.

const (
	kubeVersion = "v1.34.4"
	kubeNode    = "weft-e2e-node"
)

// kubeAPIServerBinary is $WEFT_KUBE_APISERVER_BIN, else the cache's.
func kubeAPIServerBinary() (string, error) {
	bin := os.Getenv("WEFT_KUBE_APISERVER_BIN")
	if bin == "" {
		cache := os.Getenv("WEFT_CACHE")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			cache = filepath.Join(home, ".cache", "weft")
		}
		bin = filepath.Join(cache, "kube-apiserver-"+kubeVersion)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("kube-apiserver %s not found at %s: run make kube-apiserver (or e2e/kube-apiserver.sh): %w", kubeVersion, bin, err)
	}
	return bin, nil
}

// controlPlane is a running etcd and kube-apiserver.
type controlPlane struct {
	url        string // https://127.0.0.1:port
	kubeconfig string // the admin's
	admin      *kubernetes.Clientset
}

// startControlPlane starts etcd and kube-apiserver on free loopback ports,
// with a token file (the admin is in system:masters), RBAC, and a key for
// ServiceAccount tokens; they stop when the test ends.
func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	apiserver, err := kubeAPIServerBinary()
	if err != nil {
		t.Fatal(err)
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd not found (apt-get install etcd-server): %v", err)
	}
	dir := t.TempDir()
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	client := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	etcdProc := startTestProc(t, "etcd", childEnv(), nil, etcd,
		"--name", "weft-e2e", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "weft-e2e="+peer)
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := waitUntil(30*time.Second, etcdProc, func() error {
		code, body, err := httpGetStatus(hc, client+"/health")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("etcd /health: %d %s", code, body)
		}
		return err
	}); err != nil {
		t.Fatalf("etcd did not start: %v\n%s", err, tail(etcdProc.logPath, 20))
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyPath := writeFile(t, dir, "sa.key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	adminToken := token(16)
	tokens := writeFile(t, dir, "tokens.csv", []byte(adminToken+",weft-e2e-admin,weft-e2e-admin,system:masters\n"))

	cp := &controlPlane{url: fmt.Sprintf("https://127.0.0.1:%d", ports[2])}
	proc := startTestProc(t, "kube-apiserver", childEnv(), nil, apiserver,
		"--etcd-servers="+client,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--token-auth-file="+tokens,
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+keyPath, "--service-account-signing-key-file="+keyPath,
		"--service-cluster-ip-range=10.96.0.0/16",
		// Loopback is not a valid endpoint address for the kubernetes Service.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true")
	tc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if err := waitUntil(60*time.Second, proc, func() error {
		req, _ := http.NewRequest("GET", cp.url+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := tc.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	}); err != nil {
		t.Fatalf("kube-apiserver did not become ready: %v\n%s", err, tail(proc.logPath, 30))
	}
	cp.kubeconfig = writeKubeconfig(t, filepath.Join(dir, "admin.kubeconfig"), cp.url, adminToken)
	cp.admin, err = kubernetes.NewForConfig(&rest.Config{Host: cp.url, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{Insecure: true}})
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

// writeKubeconfig writes a kubeconfig for server with a bearer token.
func writeKubeconfig(t *testing.T, path, server, tok string) string {
	t.Helper()
	writeFile(t, filepath.Dir(path), filepath.Base(path), fmt.Appendf(nil, `apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: e2e
  user:
    token: %s
contexts:
- name: e2e
  context: {cluster: e2e, user: e2e}
current-context: e2e
`, server, tok))
	return path
}

// kubectl runs kubectl with the admin's kubeconfig and returns its stdout.
func (cp *controlPlane) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command("kubectl", append([]string{"--kubeconfig", cp.kubeconfig}, args...)...)
	cmd.Dir = suite.root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// kubePod is one pod whose container is a real process.
type kubePod struct {
	name, app, deployment string
	uid, containerID      string
	cgroupDir             string // the container's cgroup, made by the test
	pid                   int
	port                  int
}

// createWorkload creates a Deployment, its ReplicaSet and one Pod of it on
// kubeNode, as the controllers and the kubelet would have: owner
// references, pod-template-hash, and a status naming the container by
// containerID (containerd://<id>).
func createWorkload(t *testing.T, cs *kubernetes.Clientset, ns, deployment, app string) *kubePod {
	t.Helper()
	ctx := context.Background()
	const hash = "5d8f7c9b4"
	labels := map[string]string{"pod-template-hash": hash}
	selector := map[string]string{"weft-e2e/app": deployment}
	for k, v := range selector {
		labels[k] = v
	}
	if app != "" {
		labels["app.kubernetes.io/name"] = app
	}
	container := corev1.Container{Name: "app", Image: "registry.example/weft-e2e/" + deployment + ":1.0"}
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{container}}}
	d, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: deployment},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: selector}, Template: template},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	yes := true
	rsName := deployment + "-" + hash
	rs, err := cs.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: rsName, Labels: labels, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: rsName + "-" + token(5), Labels: labels, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
		Spec: corev1.PodSpec{NodeName: kubeNode, Containers: []corev1.Container{container}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	idBytes := make([]byte, 32)
	rand.Read(idBytes)
	p := &kubePod{name: pod.Name, app: app, deployment: deployment, uid: string(pod.UID), containerID: hex.EncodeToString(idBytes)}
	now := metav1.Now()
	pod.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, StartTime: &now,
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", ContainerID: "containerd://" + p.containerID, Image: container.Image,
			ImageID: container.Image + "@sha256:" + strings.Repeat("ab", 32), Ready: true, Started: &yes,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}},
	}
	if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// makeCgroup creates dir (and its missing parents) and removes them when
// the test ends, after the processes in it are gone (register it before
// starting them).
func makeCgroup(t *testing.T, dir string) {
	t.Helper()
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make cgroup %s: %v", dir, err)
	}
	t.Cleanup(func() {
		for _, d := range made { // innermost first
			var err error
			for range 50 {
				if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
				time.Sleep(100 * time.Millisecond) // a process still exiting
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
	})
}

// startInCgroup starts gosrv with its pid written to cgroupDir's
// cgroup.procs before it execs, so the server never runs outside it.
func startInCgroup(t *testing.T, p *kubePod) {
	t.Helper()
	lines := make(chan string, 16)
	proc := startTestProc(t, "gosrv-"+p.deployment, childEnv(), lines, "/bin/sh", "-c",
		`echo $$ > "$0/cgroup.procs" && exec "$1"`, p.cgroupDir, suite.bin["gosrv"])
	port := waitLine(t, proc, lines, 10*time.Second, func(string) bool { return true })
	var err error
	if p.port, err = strconv.Atoi(strings.TrimSpace(port)); err != nil {
		t.Fatalf("gosrv port %q", port)
	}
	p.pid = proc.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.pid))
	if err != nil || !strings.Contains(string(b), p.containerID) {
		t.Fatalf("gosrv (pid %d) is not in its cgroup: %v\n%s", p.pid, err, b)
	}
}

// jsonlSpan is the part of a jsonl line the test reads.
type jsonlSpan struct {
	Name       string         `json:"name"`
	Kind       string         `json:"kind"`
	Service    string         `json:"service_name"`
	PID        *int           `json:"process_pid"`
	Attributes map[string]any `json:"attributes"`
	Resource   map[string]any `json:"resource"`
}

func readJSONL(path string) ([]jsonlSpan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var spans []jsonlSpan
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var s jsonlSpan
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		spans = append(spans, s)
	}
	return spans, sc.Err()
}

// TestKubernetes: weft, run as deploy/kubernetes's ServiceAccount with
// KUBECONFIG and NODE_NAME, puts each pod's metadata on the spans of the
// processes in its containers: one in a cgroupfs-driver cgroup of the v1
// pids hierarchy, one in a systemd-driver cgroup of cgroup2; the service
// name comes from the app.kubernetes.io/name label, else the Deployment.
func TestKubernetes(t *testing.T) {
	s := needSuite(t)
	weftBin := os.Getenv("WEFT_E2E_BIN")
	if weftBin == "" {
		weftBin = filepath.Join(s.dir, "bin", "weft")
	}
	if _, err := os.Stat(weftBin); err != nil {
		t.Fatalf("weft binary: %v", err)
	}
	for _, d := range []string{"/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified"} {
		if _, err := os.Stat(filepath.Join(d, "cgroup.procs")); err != nil {
			t.Fatalf("cgroup hierarchy %s is not mounted (this test needs the v1 pids controller and cgroup2 at /sys/fs/cgroup/unified): %v", d, err)
		}
	}
	cp := startControlPlane(t)

	// The manifests: the server validates them (and the privileged
	// variant), then they are applied for real, so weft runs with their
	// ClusterRole. A server dry run cannot create the namespace its other
	// objects go in, so that comes first.
	cp.kubectl(t, "apply", "-f", "deploy/kubernetes/base/namespace.yaml")
	cp.kubectl(t, "apply", "--dry-run=server", "-k", "deploy/kubernetes")
	cp.kubectl(t, "apply", "--dry-run=server", "-k", "deploy/kubernetes/privileged")
	cp.kubectl(t, "apply", "-k", "deploy/kubernetes")
	saToken := strings.TrimSpace(cp.kubectl(t, "-n", "weft", "create", "token", "weft", "--duration=1h"))
	weftKubeconfig := writeKubeconfig(t, filepath.Join(t.TempDir(), "weft.kubeconfig"), cp.url, saToken)

	ctx := context.Background()
	const ns = "weft-e2e-shop"
	if _, err := cp.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No controller-manager makes the default ServiceAccount.
	if _, err := cp.admin.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	orders := createWorkload(t, cp.admin, ns, "orders", "orders-api")
	orders.cgroupDir = filepath.Join("/sys/fs/cgroup/pids/kubepods/besteffort", "pod"+orders.uid, orders.containerID)
	billing := createWorkload(t, cp.admin, ns, "billing", "")
	billing.cgroupDir = filepath.Join("/sys/fs/cgroup/unified/kubepods.slice/kubepods-besteffort.slice",
		"kubepods-besteffort-pod"+strings.ReplaceAll(billing.uid, "-", "_")+".slice", "cri-containerd-"+billing.containerID+".scope")

	// weft first, so the servers' first connections are seen with the pods
	// already known; the cgroups are made before the processes start and
	// removed after they stop.
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	spans := filepath.Join(t.TempDir(), "spans.jsonl")
	weft := startTestProc(t, "weft-k8s", childEnv("KUBECONFIG="+weftKubeconfig, "NODE_NAME="+kubeNode, "OTEL_BSP_SCHEDULE_DELAY=200"), nil,
		weftBin, "--exporter", "jsonl", "--jsonl-path", spans, "--http-addr", httpAddr,
		"--docker-socket", "", "--k8s-cluster-name", "weft-e2e", "--log-level", "info")
	if err := waitUntil(weftReadyTimeout, weft, func() error {
		b, _ := os.ReadFile(weft.logPath)
		if !strings.Contains(string(b), "Kubernetes metadata on") {
			return errors.New(`no "Kubernetes metadata on" in its log`)
		}
		code, body, err := httpGetStatus(&http.Client{Timeout: 2 * time.Second}, "http://"+httpAddr+"/readyz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/readyz: %d %s", code, body)
		}
		return err
	}); err != nil {
		t.Fatalf("weft with Kubernetes metadata did not become ready: %v\n%s", err, tail(weft.logPath, 40))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("weft (Kubernetes) log:\n%s", tail(weft.logPath, 60))
		}
	})

	for _, p := range []*kubePod{orders, billing} {
		makeCgroup(t, p.cgroupDir)
		startInCgroup(t, p)
	}
	hc := &http.Client{Timeout: 5 * time.Second}
	for _, p := range []*kubePod{orders, billing} {
		for i := range 3 {
			url := fmt.Sprintf("http://127.0.0.1:%d/items/%d", p.port, i+1)
			if code, _, err := httpGetStatus(hc, url); err != nil || code != http.StatusOK {
				t.Fatalf("GET %s: %d %v", url, code, err)
			}
		}
	}

	server := map[int]jsonlSpan{}
	var peers []string
	err = poll(30*time.Second, 200*time.Millisecond, weft, func() error {
		all, err := readJSONL(spans)
		if err != nil {
			return err
		}
		peers = peers[:0]
		for _, s := range all {
			for _, p := range []*kubePod{orders, billing} {
				switch {
				case s.Kind == "server" && s.PID != nil && *s.PID == p.pid:
					server[p.pid] = s
				case s.Kind == "client" && s.Attributes["server.port"] == float64(p.port):
					peers = append(peers, fmt.Sprint(p.port, "=", s.Attributes["service.peer.name"]))
				}
			}
		}
		if len(server) < 2 || len(peers) < 6 {
			return fmt.Errorf("%d of 2 servers' spans and %d of 6 client spans", len(server), len(peers))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("spans: %v", err)
	}
	for _, p := range []*kubePod{orders, billing} {
		res := server[p.pid].Resource
		service := p.app
		if service == "" {
			service = p.deployment
		}
		want := map[string]any{
			"service.name": service, "service.namespace": ns,
			"k8s.namespace.name": ns, "k8s.pod.name": p.name, "k8s.pod.uid": p.uid,
			"k8s.container.name": "app", "k8s.node.name": kubeNode,
			"k8s.deployment.name": p.deployment, "k8s.replicaset.name": p.deployment + "-5d8f7c9b4",
			"k8s.cluster.name": "weft-e2e",
			"container.id":     p.containerID, "container.name": "app",
			"container.image.name": "registry.example/weft-e2e/" + p.deployment,
			"process.pid":          float64(p.pid), "process.executable.name": "gosrv",
		}
		for k, v := range want {
			if res[k] != v {
				t.Errorf("%s: resource %s = %v, want %v", p.deployment, k, res[k], v)
			}
		}
		if t.Failed() {
			t.Logf("%s resource: %v", p.deployment, res)
		}
	}
	for _, pe := range peers {
		port, name, _ := strings.Cut(pe, "=")
		want := "orders-api"
		if port == strconv.Itoa(billing.port) {
			want = "billing"
		}
		if name != want {
			t.Errorf("client span to port %s: service.peer.name %q, want %q", port, name, want)
		}
	}

	code, body, err := httpGetStatus(hc, "http://"+httpAddr+"/metrics")
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `weft_k8smeta_lookups_total{result="pod"}`) {
		t.Errorf("/metrics: %d %v, no weft_k8smeta_lookups_total{result=\"pod\"}", code, err)
	}
	if b, err := os.ReadFile(weft.logPath); err != nil || strings.Contains(string(b), "forbidden") {
		t.Errorf("weft was refused something by the ClusterRole (or its log unreadable: %v):\n%s", err, tail(weft.logPath, 20))
	}
}

// TestKubernetesOff: outside Kubernetes (the suite's agent has neither a
// service account nor KUBECONFIG) weft says so once and carries on.
func TestKubernetesOff(t *testing.T) {
	s := needWeft(t)
	b, err := os.ReadFile(s.weft.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "Kubernetes metadata off: "); n != 1 {
		t.Errorf(`weft logged "Kubernetes metadata off: ..." %d times, want once:\n%s`, n, tail(s.weft.logPath, 20))
	}
}

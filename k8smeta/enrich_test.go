package k8smeta

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/weftrace/weft/procmeta"
)

var _ procmeta.Enricher = (*Resolver)(nil)

// fakeProcess is one process of a fake /proc: what procmeta and the cgroup
// cache read.
type fakeProcess struct {
	exe    string
	env    []string
	cgroup string // the file's content
}

func writeFakeProcess(t *testing.T, root string, pid int, p fakeProcess) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(p.exe, filepath.Join(dir, "exe")); err != nil {
		t.Fatal(err)
	}
	nul := func(ss ...string) []byte {
		var b []byte
		for _, s := range ss {
			b = append(append(b, s...), 0)
		}
		return b
	}
	for name, b := range map[string][]byte{
		"cmdline": nul(p.exe),
		"environ": nul(p.env...),
		"cgroup":  []byte(p.cgroup),
		"comm":    []byte(filepath.Base(p.exe) + "\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// v1Cgroup is /proc/PID/cgroup of a kubelet with the cgroupfs driver on a
// v1 (hybrid) host, as on our build machines.
func v1Cgroup(podUID, id string) string {
	path := "/kubepods/besteffort/pod" + podUID + "/" + id
	return "12:pids:" + path + "\n11:memory:" + path + "\n1:name=systemd:" + path + "\n0::/\n"
}

// systemdCgroup is the same on a cgroup v2 host with the systemd driver.
func systemdCgroup(podUID, id string) string {
	return "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
		strings.ReplaceAll(podUID, "-", "_") + ".slice/cri-containerd-" + id + ".scope\n"
}

// withID gives a test pod's first container the runtime id n.
func withID(p *corev1.Pod, n byte) (*corev1.Pod, string) {
	p.Status.ContainerStatuses[0].ContainerID = "containerd://" + cid(n)
	return p, cid(n)
}

// manualClock is a settable clock for procmeta and the cgroup cache.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *manualClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestProcmetaEnrichment is the wiring weft runs: procmeta's cache, with
// the Resolver as its Enricher, over a fake /proc and a fake API server.
// Each process gets its container's and pod's attributes, and its service
// name by the precedence: its own OTEL_SERVICE_NAME (the container's env
// as the process has it), the pod spec's literal OTEL_SERVICE_NAME, the
// app.kubernetes.io/name label, the owner's name, the container's name,
// the executable.
func TestProcmetaEnrichment(t *testing.T) {
	root := t.TempDir()
	rsOwner := owner("ReplicaSet", "orders-5d8f7c9b4")
	hash := map[string]string{"pod-template-hash": "5d8f7c9b4"}
	labelled := func(extra map[string]string) map[string]string {
		m := map[string]string{"app.kubernetes.io/name": "orders-api"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	ownEnv, ownEnvID := withID(testPod("orders-5d8f7c9b4-aaaaa", "00000000-0000-0000-0000-00000000000a", "10.244.1.10", rsOwner, labelled(hash), "app"), 1)
	specEnv, specEnvID := withID(testPod("orders-5d8f7c9b4-bbbbb", "00000000-0000-0000-0000-00000000000b", "10.244.1.11", rsOwner, labelled(hash), "app"), 2)
	specEnv.Spec.Containers[0].Env = append(specEnv.Spec.Containers[0].Env, corev1.EnvVar{Name: "OTEL_SERVICE_NAME", Value: "orders-from-spec"})
	label, labelID := withID(testPod("orders-5d8f7c9b4-ccccc", "00000000-0000-0000-0000-00000000000c", "10.244.1.12", rsOwner, labelled(hash), "app"), 3)
	ownerOnly, ownerOnlyID := withID(testPod("billing-7f6d5c4b3-ddddd", "00000000-0000-0000-0000-00000000000d", "10.244.1.13",
		owner("ReplicaSet", "billing-7f6d5c4b3"), map[string]string{"pod-template-hash": "7f6d5c4b3"}, "server"), 4)
	bare, bareID := withID(testPod("debug", "00000000-0000-0000-0000-00000000000e", "10.244.1.14", nil, nil, "toolbox"), 5)
	rsOrders := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "orders-5d8f7c9b4", Namespace: "shop", OwnerReferences: owner("Deployment", "orders")}}
	rsBilling := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "billing-7f6d5c4b3", Namespace: "shop", OwnerReferences: owner("Deployment", "billing")}}

	procs := map[int]fakeProcess{
		10: {exe: "/usr/bin/curl", cgroup: "12:pids:/user.slice\n0::/user.slice\n"},
		20: {exe: "/app/orders", env: []string{"OTEL_SERVICE_NAME=orders-own", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=payments"},
			cgroup: v1Cgroup(string(ownEnv.UID), ownEnvID)},
		21: {exe: "/app/orders", cgroup: systemdCgroup(string(specEnv.UID), specEnvID)},
		22: {exe: "/app/orders", cgroup: v1Cgroup(string(label.UID), labelID)},
		23: {exe: "/app/billing", cgroup: v1Cgroup(string(ownerOnly.UID), ownerOnlyID)},
		24: {exe: "/bin/sh", cgroup: v1Cgroup(string(bare.UID), bareID)},
	}
	for pid, p := range procs {
		writeFakeProcess(t, root, pid, p)
	}
	kube, _ := newTestKube(t, ownEnv, specEnv, label, ownerOnly, bare, rsOrders, rsBilling)
	r := NewResolver(NewCgroupCache(CgroupConfig{ProcRoot: root}), nil, kube)
	cache := procmeta.NewCache(procmeta.Config{ProcRoot: root, HostName: testNode, Enricher: r})

	tests := []struct {
		pid     uint32
		service string
		want    map[string]any // a subset of the resource
		absent  []string
	}{
		{10, "curl", map[string]any{"process.executable.name": "curl", "host.name": testNode},
			[]string{"container.id", "k8s.pod.name", "service.namespace"}},
		{20, "orders-own", map[string]any{
			"container.id": ownEnvID, "container.name": "app", "container.image.name": "registry.example/shop/app",
			"k8s.namespace.name": "shop", "k8s.pod.name": ownEnv.Name, "k8s.pod.uid": string(ownEnv.UID),
			"k8s.container.name": "app", "k8s.node.name": testNode, "k8s.replicaset.name": "orders-5d8f7c9b4",
			"k8s.deployment.name": "orders", "service.namespace": "payments", // the process's own claim wins
			"process.pid": int64(20), "process.executable.name": "orders",
		}, nil},
		{21, "orders-from-spec", map[string]any{"k8s.pod.name": specEnv.Name, "container.runtime.name": "containerd", "service.namespace": "shop"}, nil},
		{22, "orders-api", map[string]any{"k8s.pod.name": label.Name, "k8s.deployment.name": "orders"}, nil},
		{23, "billing", map[string]any{"k8s.pod.name": ownerOnly.Name, "k8s.deployment.name": "billing", "k8s.container.name": "server"}, nil},
		{24, "toolbox", map[string]any{"k8s.pod.name": "debug", "k8s.container.name": "toolbox"}, []string{"k8s.deployment.name", "k8s.replicaset.name"}},
	}
	for _, tt := range tests {
		p := cache.Lookup(tt.pid, "")
		if p.ServiceName != tt.service {
			t.Errorf("pid %d: service.name %q, want %q", tt.pid, p.ServiceName, tt.service)
		}
		got := attrMap(p.Attributes)
		if got["service.name"] != tt.service {
			t.Errorf("pid %d: resource service.name %v, want %q", tt.pid, got["service.name"], tt.service)
		}
		for k, v := range tt.want {
			if g, ok := got[k]; !ok || g != v {
				t.Errorf("pid %d: %s = %v, want %v (resource %v)", tt.pid, k, g, v, got)
			}
		}
		for _, k := range tt.absent {
			if g, ok := got[k]; ok {
				t.Errorf("pid %d: %s = %v, want none", tt.pid, k, g)
			}
		}
	}
	if n := cache.Stats().Refreshes; n != 0 {
		t.Errorf("%d refreshes of answers that were final", n)
	}

	// Exit: the cgroup cache is told too.
	cache.Forget(22)
	r.cgroups.mu.Lock()
	e := r.cgroups.pids[22]
	r.cgroups.mu.Unlock()
	if e == nil || !e.exiting {
		t.Errorf("cgroup cache entry of an exited pid: %+v", e)
	}
}

// TestProcmetaEnrichmentLatePod: a process seen before the informers know
// its pod gets the pod's metadata on a later lookup, within EnrichRetry of
// the pod's arrival; a pod that never comes is asked about for EnrichFor
// only.
func TestProcmetaEnrichmentLatePod(t *testing.T) {
	root := t.TempDir()
	pod, id := withID(testPod("late", "00000000-0000-0000-0000-0000000000ff", "10.244.1.20", nil, map[string]string{"app.kubernetes.io/name": "late-app"}, "main"), 9)
	writeFakeProcess(t, root, 30, fakeProcess{exe: "/app/late", cgroup: v1Cgroup(string(pod.UID), id)})
	writeFakeProcess(t, root, 31, fakeProcess{exe: "/app/never", cgroup: v1Cgroup("00000000-0000-0000-0000-000000000000", cid(10))})
	kube, cs := newTestKube(t)
	r := NewResolver(NewCgroupCache(CgroupConfig{ProcRoot: root}), nil, kube)
	clock := &manualClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	cache := procmeta.NewCache(procmeta.Config{ProcRoot: root, HostName: "h", Enricher: r, Now: clock.Now,
		EnrichRetry: time.Second, EnrichFor: 10 * time.Second})

	p := cache.Lookup(30, "")
	if p.ServiceName != "late" || attrMap(p.Attributes)["container.id"] != id {
		t.Fatalf("before the pod: %q %v", p.ServiceName, attrMap(p.Attributes))
	}
	if _, err := cs.CoreV1().Pods("shop").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod", func() bool { _, ok := kube.PodByContainer(id); return ok })
	if p := cache.Lookup(30, ""); p.ServiceName != "late" {
		t.Errorf("asked again before EnrichRetry: %q", p.ServiceName)
	}
	clock.Add(time.Second)
	p = cache.Lookup(30, "")
	if got := attrMap(p.Attributes); p.ServiceName != "late-app" || got["k8s.pod.name"] != "late" {
		t.Errorf("after the pod: %q %v", p.ServiceName, got)
	}
	if p2 := cache.Lookup(30, ""); p2 != p {
		t.Errorf("a final answer was not kept")
	}

	cache.Lookup(31, "")
	for range 20 {
		clock.Add(time.Second)
		cache.Lookup(31, "")
	}
	before := cache.Stats().Refreshes
	clock.Add(time.Second)
	cache.Lookup(31, "")
	if after := cache.Stats().Refreshes; after != before || before > 12 {
		t.Errorf("refreshes: %d, then %d: want them to stop after EnrichFor", before, after)
	}
}

// TestPeerName: a client's remote address is named by the Service that
// claims it, else by the pod of this node that has it.
func TestPeerName(t *testing.T) {
	web := testPod("web-0", "00000000-0000-0000-0000-000000000021", "10.244.1.30", owner("StatefulSet", "web"), nil, "nginx")
	api := testPod("api-1", "00000000-0000-0000-0000-000000000022", "10.244.1.31", nil, map[string]string{"app.kubernetes.io/name": "api"}, "api")
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "frontend", Namespace: "shop"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.40", ClusterIPs: []string{"10.96.0.40"}}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "frontend-x1", Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: "frontend"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.244.2.9"}}},
	}
	kube, _ := newTestKube(t, web, api, svc, slice)
	r := NewResolver(NewCgroupCache(CgroupConfig{ProcRoot: t.TempDir()}), nil, kube)
	for ip, want := range map[string]string{
		"10.96.0.40":  "frontend", // cluster IP
		"10.244.2.9":  "frontend", // an endpoint on another node
		"10.244.1.30": "web",      // a pod of this node: its owner
		"10.244.1.31": "api",      // its label
		"10.244.9.9":  "",
		"127.0.0.1":   "",
	} {
		if got := r.PeerName(netip.MustParseAddr(ip)); got != want {
			t.Errorf("PeerName(%s) = %q, want %q", ip, got, want)
		}
	}
	if got := NewResolver(NewCgroupCache(CgroupConfig{}), nil, nil).PeerName(netip.MustParseAddr("10.96.0.40")); got != "" {
		t.Errorf("without Kubernetes: %q", got)
	}
}

// TestProcmetaEnrichmentAfterExec: a runtime's init is announced (exec'd)
// before it joins the container's cgroup, then execs the entrypoint; the
// second announcement reads the cgroup again.
func TestProcmetaEnrichmentAfterExec(t *testing.T) {
	root := t.TempDir()
	pod, id := withID(testPod("moved", "00000000-0000-0000-0000-0000000000ee", "10.244.1.21", nil, map[string]string{"app.kubernetes.io/name": "moved-app"}, "main"), 11)
	writeFakeProcess(t, root, 40, fakeProcess{exe: "/usr/bin/runc", cgroup: "12:pids:/\n0::/\n"})
	kube, _ := newTestKube(t, pod)
	r := NewResolver(NewCgroupCache(CgroupConfig{ProcRoot: root}), nil, kube)
	cache := procmeta.NewCache(procmeta.Config{ProcRoot: root, HostName: "h", Enricher: r})

	cache.ObserveBlocks(40, []byte("runc\x00init\x00"), nil)
	if p := cache.Lookup(40, ""); p.ServiceName != "runc" || attrMap(p.Attributes)["container.id"] != nil {
		t.Fatalf("runc init: %q %v", p.ServiceName, attrMap(p.Attributes))
	}
	if err := os.RemoveAll(filepath.Join(root, "40")); err != nil {
		t.Fatal(err)
	}
	writeFakeProcess(t, root, 40, fakeProcess{exe: "/app/server", cgroup: v1Cgroup(string(pod.UID), id)})
	cache.ObserveBlocks(40, []byte("/app/server\x00"), nil)
	if p := cache.Lookup(40, ""); p.ServiceName != "moved-app" || attrMap(p.Attributes)["k8s.pod.name"] != "moved" {
		t.Errorf("after exec: %q %v", p.ServiceName, attrMap(p.Attributes))
	}
}

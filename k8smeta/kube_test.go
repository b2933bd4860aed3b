package k8smeta

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const testNode = "node-1"

func ptr[T any](v T) *T { return &v }

func owner(kind, name string) []metav1.OwnerReference {
	return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(name + "-uid"), Controller: ptr(true)}}
}

func cid(n byte) string { return strings.Repeat(string("0123456789abcdef"[n%16]), 64) }

// testPod is a pod as the API server returns it, managed fields and all.
func testPod(name, uid, ip string, owners []metav1.OwnerReference, labels map[string]string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "shop", UID: types.UID(uid), Labels: labels, OwnerReferences: owners,
			Annotations:   map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.Repeat("x", 1000)},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubelet", Operation: metav1.ManagedFieldsOperationUpdate}},
		},
		Spec: corev1.PodSpec{NodeName: testNode},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	for i, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{
			Name: c, Image: "registry.example/shop/" + c + ":1.0",
			Command: []string{"/" + c}, Env: []corev1.EnvVar{{Name: "DB_PASSWORD", Value: "secret"}},
		})
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c, ContainerID: "containerd://" + cid(byte(len(name)+i)), Image: "registry.example/shop/" + c + ":1.0",
			ImageID: "registry.example/shop/" + c + "@sha256:abcd", Ready: true,
		})
	}
	return p
}

func newTestKube(t *testing.T, objs ...runtime.Object) (*Kube, *fake.Clientset) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	k := NewKube(cs, KubeConfig{NodeName: testNode})
	k.Start()
	t.Cleanup(k.Stop)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !k.WaitForSync(ctx) {
		t.Fatal("informers did not sync")
	}
	return k, cs
}

func TestKubePodScopedToNode(t *testing.T) {
	cs := fake.NewClientset()
	var mu sync.Mutex
	var selectors []string
	record := func(a k8stesting.Action) (bool, runtime.Object, error) {
		var fields string
		switch a := a.(type) {
		case k8stesting.ListAction:
			fields = a.GetListRestrictions().Fields.String()
		case k8stesting.WatchAction:
			fields = a.GetWatchRestrictions().Fields.String()
		}
		mu.Lock()
		selectors = append(selectors, a.GetVerb()+" "+fields)
		mu.Unlock()
		return false, nil, nil
	}
	cs.PrependReactor("list", "pods", record)
	cs.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		_, _, _ = record(a)
		return false, nil, nil
	})
	k := NewKube(cs, KubeConfig{NodeName: testNode})
	k.Start()
	defer k.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !k.WaitForSync(ctx) {
		t.Fatal("no sync")
	}
	eventually(t, "the pod watch", func() bool { mu.Lock(); defer mu.Unlock(); return len(selectors) >= 2 })
	mu.Lock()
	defer mu.Unlock()
	for _, s := range selectors {
		if !strings.HasSuffix(s, " spec.nodeName="+testNode) {
			t.Errorf("pods %q: want the field selector spec.nodeName=%s", s, testNode)
		}
	}
}

func TestKubePodsAndOwners(t *testing.T) {
	deployPod := testPod("checkout-7d9f8b6c5d-x2x9q", "11111111-1111-1111-1111-111111111111", "10.244.1.7",
		owner("ReplicaSet", "checkout-7d9f8b6c5d"),
		map[string]string{"app.kubernetes.io/name": "checkout", "pod-template-hash": "7d9f8b6c5d", "team": "pay"},
		"app", "envoy")
	deployPod.Spec.Containers[0].Env = append(deployPod.Spec.Containers[0].Env,
		corev1.EnvVar{Name: "OTEL_SERVICE_NAME", Value: "checkout-api"})
	deployPod.Spec.Containers[1].Env = append(deployPod.Spec.Containers[1].Env,
		corev1.EnvVar{Name: "OTEL_SERVICE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}})
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "checkout-7d9f8b6c5d", Namespace: "shop", OwnerReferences: owner("Deployment", "checkout")}}

	orphanRSPod := testPod("cart-5f6d7c8b9-abcde", "22222222-2222-2222-2222-222222222222", "10.244.1.8",
		owner("ReplicaSet", "cart-5f6d7c8b9"), map[string]string{"pod-template-hash": "5f6d7c8b9"}, "cart")
	stsPod := testPod("db-0", "33333333-3333-3333-3333-333333333333", "10.244.1.9", owner("StatefulSet", "db"), nil, "postgres")
	dsPod := testPod("agent-q8w7e", "44444444-4444-4444-4444-444444444444", "192.168.0.10", owner("DaemonSet", "agent"), nil, "agent")
	dsPod.Spec.HostNetwork = true
	cronPod := testPod("report-29301840-kx7vz", "55555555-5555-5555-5555-555555555555", "10.244.1.10", owner("Job", "report-29301840"), nil, "report")
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "report-29301840", Namespace: "shop", OwnerReferences: []metav1.OwnerReference{{Kind: "CronJob", Name: "report", Controller: ptr(true)}}}}
	jobPod := testPod("migrate-abcde", "66666666-6666-6666-6666-666666666666", "10.244.1.11", owner("Job", "migrate"), nil, "migrate")
	barePod := testPod("debug", "77777777-7777-7777-7777-777777777777", "10.244.1.12", nil, nil, "shell")
	rolloutPod := testPod("web-6b7c8d9f-zzzzz", "88888888-8888-8888-8888-888888888888", "10.244.1.13", owner("Rollout", "web"), nil, "web")

	k, _ := newTestKube(t, deployPod, rs, orphanRSPod, stsPod, dsPod, cronPod, job, jobPod, barePod, rolloutPod)
	eventually(t, "the pods", func() bool {
		k.mu.RLock()
		defer k.mu.RUnlock()
		return len(k.pods) == 8
	})

	p, ok := k.PodByContainer(cid(byte(len(deployPod.Name))))
	if !ok {
		t.Fatal("pod by container id not found")
	}
	if p.Name != deployPod.Name || p.Namespace != "shop" || p.UID != string(deployPod.UID) || p.NodeName != testNode || p.AppName != "checkout" {
		t.Errorf("pod = %+v", p)
	}
	app, ok := p.Container(cid(byte(len(deployPod.Name))))
	if !ok || app.Name != "app" || app.ServiceName != "checkout-api" || app.Image != "registry.example/shop/app:1.0" {
		t.Errorf("app container = %+v", app)
	}
	envoy, _ := p.Container(cid(byte(len(deployPod.Name) + 1)))
	if envoy.Name != "envoy" || envoy.ServiceName != "" {
		t.Errorf("envoy container = %+v: OTEL_SERVICE_NAME from a fieldRef is not literal", envoy)
	}
	if q, ok := k.PodByIP(netip.MustParseAddr("10.244.1.7")); !ok || q != p {
		t.Errorf("PodByIP = %v, %v", q, ok)
	}
	if q, ok := k.PodByIP(netip.MustParseAddr("::ffff:10.244.1.7")); !ok || q != p {
		t.Errorf("PodByIP of the v4-mapped address = %v, %v", q, ok)
	}
	if q, ok := k.PodByUID(string(deployPod.UID)); !ok || q != p {
		t.Errorf("PodByUID = %v, %v", q, ok)
	}
	if _, ok := k.PodByIP(netip.MustParseAddr("192.168.0.10")); ok {
		t.Errorf("a host-network pod was found by the node's IP")
	}

	tests := []struct {
		pod  *corev1.Pod
		want Workload
		name string
	}{
		{deployPod, Workload{ReplicaSet: "checkout-7d9f8b6c5d", Deployment: "checkout"}, "checkout"},
		{orphanRSPod, Workload{ReplicaSet: "cart-5f6d7c8b9", Deployment: "cart"}, "cart"}, // from pod-template-hash
		{stsPod, Workload{StatefulSet: "db"}, "db"},
		{dsPod, Workload{DaemonSet: "agent"}, "agent"},
		{cronPod, Workload{Job: "report-29301840", CronJob: "report"}, "report"},
		{jobPod, Workload{Job: "migrate"}, "migrate"},
		{barePod, Workload{}, ""},
		{rolloutPod, Workload{Other: OwnerRef{Kind: "Rollout", Name: "web"}}, "web"},
	}
	for _, tt := range tests {
		p, ok := k.PodByUID(string(tt.pod.UID))
		if !ok {
			t.Errorf("%s: not found", tt.pod.Name)
			continue
		}
		w := k.Workload(p)
		if w != tt.want || w.Name() != tt.name {
			t.Errorf("%s: workload %+v (name %q), want %+v (%q)", tt.pod.Name, w, w.Name(), tt.want, tt.name)
		}
	}
}

func TestKubePodUpdates(t *testing.T) {
	pod := testPod("api-0", "99999999-9999-9999-9999-999999999999", "10.244.2.5", owner("StatefulSet", "api"), nil, "api")
	k, cs := newTestKube(t, pod)
	ctx := context.Background()
	oldID := TrimContainerID(pod.Status.ContainerStatuses[0].ContainerID)
	eventually(t, "the pod", func() bool { _, ok := k.PodByContainer(oldID); return ok })

	// The container restarts with a new id (a cri-o node this time).
	pod = pod.DeepCopy()
	newID := cid(7)
	pod.Status.ContainerStatuses[0].ContainerID = "cri-o://" + newID
	if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new id", func() bool { _, ok := k.PodByContainer(newID); return ok })
	if _, ok := k.PodByContainer(oldID); ok {
		t.Error("the old container id still maps to the pod")
	}

	// Finished: no longer found by IP, still by container.
	pod = pod.DeepCopy()
	pod.Status.Phase = corev1.PodSucceeded
	if _, err := cs.CoreV1().Pods("shop").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the IP to go", func() bool { _, ok := k.PodByIP(netip.MustParseAddr("10.244.2.5")); return !ok })
	if _, ok := k.PodByContainer(newID); !ok {
		t.Error("a finished pod's container is not found")
	}

	if err := cs.CoreV1().Pods("shop").Delete(ctx, "api-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the pod to go", func() bool { _, ok := k.PodByContainer(newID); return !ok })
	if _, ok := k.PodByUID(string(pod.UID)); ok {
		t.Error("deleted pod still found by UID")
	}
}

func TestKubeServices(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "checkout", Namespace: "shop"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.20", ClusterIPs: []string{"10.96.0.20", "fd00::20"}},
	}
	headless := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec:       corev1.ServiceSpec{ClusterIP: "None", ClusterIPs: []string{"None"}},
	}
	slice := func(name, svcName string, ips ...string) *discoveryv1.EndpointSlice {
		s := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: "shop", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
			AddressType: discoveryv1.AddressTypeIPv4,
		}
		for _, ip := range ips {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
		}
		return s
	}
	k, cs := newTestKube(t, svc, headless,
		slice("checkout-abc12", "checkout", "10.244.1.7", "10.244.3.4"),
		slice("db-xyz98", "db", "10.244.1.9"),
		slice("zz-all-abc", "zz-all", "10.244.1.9"), // a second Service over the same pod
	)
	ip := netip.MustParseAddr
	want := map[string]Service{
		"10.96.0.20": {"shop", "checkout"},
		"fd00::20":   {"shop", "checkout"},
		"10.244.1.7": {"shop", "checkout"},
		"10.244.3.4": {"shop", "checkout"},
		"10.244.1.9": {"shop", "db"},
	}
	for a, w := range want {
		eventually(t, a, func() bool { got, ok := k.ServiceByIP(ip(a)); return ok && got == w })
	}
	if _, ok := k.ServiceByIP(ip("10.244.9.9")); ok {
		t.Error("an unknown IP has a service")
	}

	ctx := context.Background()
	if err := cs.DiscoveryV1().EndpointSlices("shop").Delete(ctx, "db-xyz98", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other claim", func() bool {
		got, ok := k.ServiceByIP(ip("10.244.1.9"))
		return ok && got == Service{"shop", "zz-all"}
	})
	if err := cs.CoreV1().Services("shop").Delete(ctx, "checkout", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cluster IP to go", func() bool { _, ok := k.ServiceByIP(ip("10.96.0.20")); return !ok })
	if got, ok := k.ServiceByIP(ip("10.244.1.7")); !ok || got.Name != "checkout" {
		t.Errorf("the endpoint slice's claim went with the Service: %v %v", got, ok)
	}
}

func TestStripPod(t *testing.T) {
	p := testPod("a", "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "10.0.0.1", owner("ReplicaSet", "a-1"),
		map[string]string{"app.kubernetes.io/name": "a", "pod-template-hash": "1", "other": "x"}, "c")
	p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "OTEL_SERVICE_NAME", Value: "svc"})
	p.Spec.Volumes = []corev1.Volume{{Name: "v"}}
	got, err := strip(p)
	if err != nil {
		t.Fatal(err)
	}
	s := got.(*corev1.Pod)
	if len(s.ManagedFields) != 0 || len(s.Annotations) != 0 || len(s.Labels) != 2 || s.Labels["other"] != "" {
		t.Errorf("metadata kept too much: %+v", s.ObjectMeta)
	}
	if len(s.Spec.Volumes) != 0 || len(s.Spec.Containers[0].Command) != 0 || len(s.Status.Conditions) != 0 {
		t.Errorf("spec or status kept too much: %+v", s)
	}
	if env := s.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "svc" {
		t.Errorf("env = %+v: only OTEL_SERVICE_NAME may stay (secrets live in env)", env)
	}
	if s.Name != "a" || s.UID != p.UID || len(s.OwnerReferences) != 1 || s.Status.PodIP != "10.0.0.1" || s.Status.ContainerStatuses[0].ContainerID != p.Status.ContainerStatuses[0].ContainerID {
		t.Errorf("stripped too much: %+v", s)
	}
	// Tombstones pass through.
	if got, _ := strip("tombstone"); got != "tombstone" {
		t.Errorf("strip changed a non-object")
	}
}

func TestTrimContainerID(t *testing.T) {
	for in, want := range map[string]string{
		"containerd://" + cid(1): cid(1),
		"docker://" + cid(2):     cid(2),
		"cri-o://" + cid(3):      cid(3),
		cid(4):                   cid(4),
		"":                       "",
	} {
		if got := TrimContainerID(in); got != want {
			t.Errorf("TrimContainerID(%q) = %q", in, got)
		}
	}
}

func TestKubeFromEnv(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	t.Setenv("KUBECONFIG", "")
	t.Setenv("NODE_NAME", "")
	k, why := KubeFromEnv()
	if k != nil || why != "Kubernetes metadata off: not in a pod (no KUBERNETES_SERVICE_HOST) and KUBECONFIG is not set" {
		t.Errorf("no cluster: %v %q", k, why)
	}

	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("KUBECONFIG", missing)
	if k, why := KubeFromEnv(); k != nil || !strings.HasPrefix(why, "Kubernetes metadata off: KUBECONFIG "+missing+": ") {
		t.Errorf("missing kubeconfig: %v %q", k, why)
	}

	kubeconfig := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://127.0.0.1:1"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	if k, why := KubeFromEnv(); k != nil || why != "Kubernetes metadata off: NODE_NAME is not set (set it from the downward API, fieldRef spec.nodeName)" {
		t.Errorf("no NODE_NAME: %v %q", k, why)
	}
	t.Setenv("NODE_NAME", testNode)
	k, why = KubeFromEnv()
	if k == nil || why != "" || k.NodeName() != testNode {
		t.Fatalf("with a kubeconfig: %v %q", k, why)
	}
	k.Stop() // never started: must not hang
}

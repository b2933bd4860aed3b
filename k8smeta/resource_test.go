package k8smeta

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func attrMap(kvs []attribute.KeyValue) map[string]any {
	m := map[string]any{}
	for _, kv := range kvs {
		if _, dup := m[string(kv.Key)]; dup {
			panic("duplicate attribute " + kv.Key)
		}
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

func TestResolver(t *testing.T) {
	root := t.TempDir()
	const (
		hostPid     = 100
		dockerPid   = 200
		podPid      = 300
		podUIDPid   = 400
		crioPid     = 500
		podUID      = "11111111-1111-1111-1111-111111111111"
		soloPodUID  = "22222222-2222-2222-2222-222222222222"
		unknownUID  = "33333333-3333-3333-3333-333333333333"
		soloPodName = "solo"
	)
	writeCgroupFile(t, root, hostPid, "0::/user.slice/session-1.scope\n")
	writeCgroupFile(t, root, dockerPid, "0::/docker/"+inspectSleeperID+"\n")

	pod := testPod("checkout-7d9f8b6c5d-x2x9q", podUID, "10.244.1.7", owner("ReplicaSet", "checkout-7d9f8b6c5d"),
		map[string]string{"pod-template-hash": "7d9f8b6c5d"}, "app", "envoy")
	appID := TrimContainerID(pod.Status.ContainerStatuses[0].ContainerID)
	writeCgroupFile(t, root, podPid, "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod"+
		strings.ReplaceAll(podUID, "-", "_")+".slice/cri-containerd-"+appID+".scope\n")
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "checkout-7d9f8b6c5d", Namespace: "shop", OwnerReferences: owner("Deployment", "checkout")}}

	solo := testPod(soloPodName, soloPodUID, "10.244.1.8", nil, nil, "main")
	solo.Status.ContainerStatuses = nil // not reported yet
	writeCgroupFile(t, root, podUIDPid, "0::/kubepods/besteffort/pod"+soloPodUID+"/"+cid(12)+"\n")
	writeCgroupFile(t, root, crioPid, "0::/kubepods.slice/kubepods-pod"+strings.ReplaceAll(unknownUID, "-", "_")+".slice/crio-"+cid(5)+".scope\n")

	f := newFakeDocker(t)
	docker := NewDocker(DockerConfig{Socket: f.socket})
	defer docker.Close()
	kube, _ := newTestKube(t, pod, rs, solo)
	eventually(t, "the pods", func() bool {
		_, ok := kube.PodByUID(soloPodUID)
		_, ok2 := kube.PodByContainer(appID)
		return ok && ok2
	})
	r := NewResolver(NewCgroupCache(CgroupConfig{ProcRoot: root}), docker, kube)

	// A host process: nothing.
	if m := r.Lookup(hostPid); len(m.Attributes()) != 0 || m.ServiceName() != "" {
		t.Errorf("host process: %+v", m)
	}

	// A Docker container: known once the fetch landed.
	m := r.Lookup(dockerPid)
	if got := attrMap(m.Attributes()); !reflect.DeepEqual(got, map[string]any{"container.id": inspectSleeperID, "container.runtime.name": "docker"}) {
		t.Errorf("docker container before the fetch: %v", got)
	}
	eventually(t, "the docker fetch", func() bool { return r.Lookup(dockerPid).Container.Name != "" })
	m = r.Lookup(dockerPid)
	want := map[string]any{
		"container.id": inspectSleeperID, "container.runtime.name": "docker",
		"container.name": "weft-k8smeta-test", "container.image.name": "local/sleeper", "container.image.tags": []string{"1"},
	}
	if got := attrMap(m.Attributes()); !reflect.DeepEqual(got, want) {
		t.Errorf("docker container:\n got %v\nwant %v", got, want)
	}
	if s := m.ServiceName(); s != "sleepy-svc" {
		t.Errorf("docker service name %q", s)
	}

	// A pod's container, by its id.
	m = r.Lookup(podPid)
	want = map[string]any{
		"container.id": appID, "container.runtime.name": "containerd",
		"container.name": "app", "container.image.name": "registry.example/shop/app", "container.image.tags": []string{"1.0"},
		"k8s.namespace.name": "shop", "k8s.pod.name": "checkout-7d9f8b6c5d-x2x9q", "k8s.pod.uid": podUID,
		"k8s.container.name": "app", "k8s.node.name": testNode,
		"k8s.replicaset.name": "checkout-7d9f8b6c5d", "k8s.deployment.name": "checkout",
		"service.namespace": "shop",
	}
	if got := attrMap(m.Attributes()); !reflect.DeepEqual(got, want) {
		t.Errorf("pod container:\n got %v\nwant %v", got, want)
	}
	if s := m.ServiceName(); s != "checkout" {
		t.Errorf("pod service name %q, want the Deployment's", s)
	}
	if docker.Stats().Fetches != 1 {
		t.Errorf("a containerd container was asked of Docker")
	}

	// A pod found by the UID in its cgroup, before the kubelet reported
	// the container's id: its only container is the one.
	m = r.Lookup(podUIDPid)
	if m.Pod == nil || m.Pod.Name != soloPodName || m.PodContainer.Name != "main" || m.ServiceName() != "main" {
		t.Errorf("pod by UID: %+v", m)
	}
	if got := attrMap(m.Attributes()); got["k8s.pod.uid"] != soloPodUID || got["container.image.name"] != "registry.example/shop/main" {
		t.Errorf("pod by UID attributes: %v", got)
	}

	// A CRI-O container of a pod not (yet) known.
	m = r.Lookup(crioPid)
	if got := attrMap(m.Attributes()); !reflect.DeepEqual(got, map[string]any{"container.id": cid(5), "container.runtime.name": "cri-o"}) || m.ServiceName() != "" {
		t.Errorf("unknown pod: %v %q", got, m.ServiceName())
	}

	s := r.Stats()
	if s.None != 1 || s.Pod != 2 || s.Container < 4 {
		t.Errorf("stats %+v", s)
	}
}

func TestServiceNamePrecedence(t *testing.T) {
	pod := &Pod{Name: "p", Namespace: "ns", AppName: "label-name"}
	bare := &Pod{Name: "p", Namespace: "ns"}
	tests := []struct {
		name string
		m    Meta
		want string
	}{
		{"pod spec env", Meta{Pod: pod, PodContainer: PodContainer{Name: "c", ServiceName: "env-name"}, Container: Container{ServiceName: "docker-env"}, Workload: Workload{Deployment: "d"}}, "env-name"},
		{"runtime env", Meta{Pod: pod, PodContainer: PodContainer{Name: "c"}, Container: Container{ServiceName: "docker-env"}}, "docker-env"},
		{"label", Meta{Pod: pod, PodContainer: PodContainer{Name: "c"}, Workload: Workload{Deployment: "d"}}, "label-name"},
		{"deployment over replicaset", Meta{Pod: bare, PodContainer: PodContainer{Name: "c"}, Workload: Workload{ReplicaSet: "d-123", Deployment: "d"}}, "d"},
		{"cronjob over job", Meta{Pod: bare, Workload: Workload{Job: "r-1", CronJob: "r"}}, "r"},
		{"statefulset", Meta{Pod: bare, Workload: Workload{StatefulSet: "s"}}, "s"},
		{"k8s container name", Meta{Pod: bare, PodContainer: PodContainer{Name: "c"}, Container: Container{Name: "k8s_c_p_ns"}}, "c"},
		{"docker container name", Meta{Container: Container{Name: "web-1"}}, "web-1"},
		{"nothing", Meta{Cgroup: Cgroup{ContainerID: cid(1)}}, ""},
	}
	for _, tt := range tests {
		if got := tt.m.ServiceName(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestAttributesWorkloads(t *testing.T) {
	p := &Pod{Name: "p", Namespace: "ns", UID: "u"}
	for _, tt := range []struct {
		w    Workload
		want map[string]string
	}{
		{Workload{StatefulSet: "s"}, map[string]string{"k8s.statefulset.name": "s"}},
		{Workload{DaemonSet: "d"}, map[string]string{"k8s.daemonset.name": "d"}},
		{Workload{Job: "j-1", CronJob: "j"}, map[string]string{"k8s.job.name": "j-1", "k8s.cronjob.name": "j"}},
		{Workload{Other: OwnerRef{Kind: "Rollout", Name: "r"}}, map[string]string{}},
	} {
		got := attrMap(Meta{Cgroup: Cgroup{ContainerID: cid(1)}, Pod: p, Workload: tt.w}.Attributes())
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("%+v: %s = %v, want %q", tt.w, k, got[k], v)
			}
		}
		if n := len(got) - 5; n != len(tt.want) { // container.id, namespace, pod name, uid, service.namespace
			t.Errorf("%+v: %d workload attributes in %v", tt.w, n, got)
		}
	}
}

func TestRegisterMetrics(t *testing.T) {
	root := t.TempDir()
	writeCgroupFile(t, root, 1, "0::/docker/"+cid(1)+"\n")
	d := NewDocker(DockerConfig{Socket: root + "/none.sock"})
	defer d.Close()
	r := NewResolver(NewCgroupCache(CgroupConfig{ProcRoot: root}), d, nil)
	r.Lookup(1)
	r.Lookup(1)
	r.Lookup(2)
	eventually(t, "the failed fetch", func() bool { return d.Stats().Failed == 1 })

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	if err := r.RegisterMetrics(mp.Meter("test")); err != nil {
		t.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				name := m.Name
				if v, ok := dp.Attributes.Value(resultKey); ok {
					name += "{" + v.AsString() + "}"
				}
				got[name] = dp.Value
			}
		}
	}
	want := map[string]int64{
		"weft_k8smeta_lookups{none}": 1, "weft_k8smeta_lookups{container}": 2, "weft_k8smeta_lookups{pod}": 0,
		"weft_k8smeta_cgroup_lookups{hit}": 1, "weft_k8smeta_cgroup_lookups{read}": 2,
		"weft_k8smeta_cgroup_evictions":    0,
		"weft_k8smeta_docker_lookups{hit}": 0, "weft_k8smeta_docker_lookups{miss}": 2,
		"weft_k8smeta_docker_fetches{all}": 1, "weft_k8smeta_docker_fetches{not_found}": 0, "weft_k8smeta_docker_fetches{failed}": 1,
		"weft_k8smeta_docker_busy": 0, "weft_k8smeta_docker_evictions": 0,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("metrics:\n got %v\nwant %v", got, want)
	}
}

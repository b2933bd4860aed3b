package k8smeta

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

// The memory tests measure what a Kube retains per object once its
// informers hold n of them: the stripped objects in the informers' stores
// and, for pods, the published Pods and their indexes. The fake clientset
// answers each list with objects made afresh (every string its own
// allocation, as decoding an API server's answer makes them), and keeps
// none itself, so the heap growth is the Kube's alone.

// Retained bytes per object, measured 2026-12-04 on a 2 vCPU VM (go1.26.8,
// amd64): pods 4,532 (the API object itself: 13,934), services 1,245,
// endpoint slices (three endpoints) 2,186, replica sets 1,572, jobs 1,834;
// stable to a few bytes between runs. Most of it is the stripped objects'
// structs (a corev1.Pod is 1,144 bytes empty, a Container 408, an
// appsv1.ReplicaSet 1,136, a batchv1.Job 1,280) and the informer's store
// and indexes. The bounds are a third or more above, for a regression to
// fail: see the README's Kubernetes section.
const maxPodBytes = 6144

var maxClusterBytes = map[string]float64{
	"services":       2048,
	"endpointslices": 3072,
	"replicasets":    2048,
	"jobs":           2560,
}

// fresh returns a copy of s in memory of its own (a literal's bytes are
// not on the heap; a decoded object's are).
func fresh(s string) string { return strings.Clone(s) }

func hexID(i, salt int) string {
	return fresh(fmt.Sprintf("%016x%016x%016x%016x", i, salt, i*31+salt, i^0x5bd1e995))
}

// realisticPod is pod i of a Deployment's ReplicaSet as an API server
// returns it: labels, annotations, managed fields, owner reference, two
// containers with env, resources, probes and mounts, and a status with
// both containers' ids.
func realisticPod(i int) *corev1.Pod {
	app := fmt.Sprintf("app-%d", i%500)
	hash := fmt.Sprintf("%09x", i%500)
	rs := app + "-" + hash
	name := fmt.Sprintf("%s-%05d", rs, i)
	image := func(c string) string { return fresh("registry.example.com/team-" + app + "/" + c + ":1.24.3") }
	env := func(c string) []corev1.EnvVar {
		env := []corev1.EnvVar{{Name: fresh("OTEL_SERVICE_NAME"), Value: fresh(app + "-" + c)}}
		for j := range 8 {
			env = append(env, corev1.EnvVar{Name: fresh(fmt.Sprintf("SETTING_%d", j)), Value: fresh(fmt.Sprintf("value-%d-%d", i, j))})
		}
		env = append(env, corev1.EnvVar{Name: fresh("POD_IP"), ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: fresh("status.podIP")}}})
		return env
	}
	container := func(c string) corev1.Container {
		return corev1.Container{
			Name: fresh(c), Image: image(c), Command: []string{fresh("/" + c), fresh("--config=/etc/" + c + "/config.yaml")},
			Ports: []corev1.ContainerPort{{Name: fresh("http"), ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
			Env:   env(c),
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			VolumeMounts:   []corev1.VolumeMount{{Name: fresh("config"), MountPath: fresh("/etc/" + c)}, {Name: fresh("kube-api-access"), MountPath: fresh("/var/run/secrets/kubernetes.io/serviceaccount"), ReadOnly: true}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: fresh("/readyz"), Port: intstr.FromInt32(8080)}}, PeriodSeconds: 10},
		}
	}
	now := metav1.NewTime(time.Unix(1_780_000_000, 0))
	ip := fmt.Sprintf("10.%d.%d.%d", 16+i/65536, i/256%256, i%256)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: fresh(name), Namespace: fresh(fmt.Sprintf("team-%d", i%40)), UID: types.UID(hexID(i, 1)[:36]),
			ResourceVersion: fresh(fmt.Sprint(100000 + i)), CreationTimestamp: now,
			GenerateName: fresh(rs + "-"),
			Labels: map[string]string{
				fresh(labelAppName): fresh(app), fresh(labelPodTemplateHash): fresh(hash),
				fresh("app.kubernetes.io/version"): fresh("1.24.3"), fresh("app.kubernetes.io/part-of"): fresh("shop"),
				fresh("team"): fresh(fmt.Sprintf("team-%d", i%40)),
			},
			Annotations: map[string]string{
				fresh("kubectl.kubernetes.io/restartedAt"): fresh("2026-12-01T10:00:00Z"),
				fresh("prometheus.io/scrape"):              fresh("true"),
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: fresh("apps/v1"), Kind: fresh("ReplicaSet"), Name: fresh(rs), UID: types.UID(hexID(i%500, 2)[:36]), Controller: ptr(true), BlockOwnerDeletion: ptr(true)}},
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: fresh("kube-controller-manager"), Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: fresh("v1"), FieldsType: fresh("FieldsV1"), FieldsV1: &metav1.FieldsV1{Raw: []byte(strings.Repeat("{\"f:metadata\":{}}", 60))}},
				{Manager: fresh("kubelet"), Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: fresh("v1"), FieldsType: fresh("FieldsV1"), Subresource: fresh("status"), FieldsV1: &metav1.FieldsV1{Raw: []byte(strings.Repeat("{\"f:status\":{}}", 60))}},
			},
		},
		Spec: corev1.PodSpec{
			NodeName: fresh(testNode), ServiceAccountName: fresh("default"),
			Containers: []corev1.Container{container("server"), container("sidecar")},
			Volumes:    []corev1.Volume{{Name: fresh("config"), VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: fresh(app + "-config")}}}}},
			Tolerations: []corev1.Toleration{
				{Key: fresh("node.kubernetes.io/not-ready"), Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
			},
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning, HostIP: fresh("192.168.1.10"), PodIP: fresh(ip), PodIPs: []corev1.PodIP{{IP: fresh(ip)}},
			StartTime: &now, QOSClass: corev1.PodQOSBurstable,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			},
		},
	}
	for j, c := range p.Spec.Containers {
		p.Status.ContainerStatuses = append(p.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: fresh(c.Name), ContainerID: fresh("containerd://" + hexID(i, 10+j)), Image: fresh(c.Image),
			ImageID: fresh(c.Image + "@sha256:" + hexID(i%500, 20+j)), Ready: true, Started: ptr(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	return p
}

// retained starts a Kube whose fake API server lists n objects of
// resource, made by gen, waits until the informer's store holds them all
// (and, for pods, the Kube has published them), and returns the heap
// growth per object.
func retained(t *testing.T, resource string, n int, gen func(i int) k8sruntime.Object) float64 {
	t.Helper()
	cs := fake.NewClientset()
	cs.PrependReactor("list", resource, func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		items := make([]k8sruntime.Object, n)
		for i := range n {
			items[i] = gen(i)
		}
		return true, listOf(resource, items), nil
	})
	before := heapInUse()
	k := NewKube(cs, KubeConfig{NodeName: testNode})
	k.Start()
	defer k.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if !k.WaitForSync(ctx) {
		t.Fatal("informers did not sync")
	}
	var store cache.Store
	switch resource {
	case "pods":
		store = k.node.Core().V1().Pods().Informer().GetStore()
	case "services":
		store = k.cluster.Core().V1().Services().Informer().GetStore()
	case "endpointslices":
		store = k.cluster.Discovery().V1().EndpointSlices().Informer().GetStore()
	case "replicasets":
		store = k.cluster.Apps().V1().ReplicaSets().Informer().GetStore()
	case "jobs":
		store = k.cluster.Batch().V1().Jobs().Informer().GetStore()
	}
	eventually(t, fmt.Sprintf("%d %s in the store", n, resource), func() bool {
		if len(store.ListKeys()) != n {
			return false
		}
		if resource != "pods" {
			return true
		}
		k.mu.RLock()
		defer k.mu.RUnlock()
		return len(k.pods) == n
	})
	after := heapInUse()
	runtime.KeepAlive(k)
	return float64(after-before) / float64(n)
}

// heapInUse is the live heap after two collections.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func listOf(resource string, items []k8sruntime.Object) k8sruntime.Object {
	switch resource {
	case "pods":
		l := &corev1.PodList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*corev1.Pod))
		}
		return l
	case "services":
		l := &corev1.ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*corev1.Service))
		}
		return l
	case "endpointslices":
		l := &discoveryv1.EndpointSliceList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*discoveryv1.EndpointSlice))
		}
		return l
	case "replicasets":
		l := &appsv1.ReplicaSetList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*appsv1.ReplicaSet))
		}
		return l
	case "jobs":
		l := &batchv1.JobList{ListMeta: metav1.ListMeta{ResourceVersion: "1"}}
		for _, o := range items {
			l.Items = append(l.Items, *o.(*batchv1.Job))
		}
		return l
	}
	panic(resource)
}

// TestPodCacheMemory: 10,000 pods of this node cost the Kube less than
// maxPodBytes each, after the transform.
func TestPodCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 pods")
	}
	const n = 10_000
	full := func() float64 { // what the API objects themselves take
		before := heapInUse()
		pods := make([]*corev1.Pod, n)
		for i := range pods {
			pods[i] = realisticPod(i)
		}
		after := heapInUse()
		runtime.KeepAlive(pods)
		return float64(after-before) / n
	}()
	per := retained(t, "pods", n, func(i int) k8sruntime.Object { return realisticPod(i) })
	t.Logf("10,000 pods: %.0f bytes retained per pod after the transform (the API object: %.0f bytes)", per, full)
	if per > maxPodBytes {
		t.Errorf("the pod cache retains %.0f bytes per pod, want at most %d", per, maxPodBytes)
	}
}

// TestClusterCacheMemory: the cluster-wide informers' cost per object,
// each kind bounded by maxClusterBytes.
func TestClusterCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 10,000 objects of each kind")
	}
	const n = 10_000
	meta := func(i int, kind string, owners bool) metav1.ObjectMeta {
		m := metav1.ObjectMeta{
			Name: fresh(fmt.Sprintf("%s-%05d", kind, i)), Namespace: fresh(fmt.Sprintf("team-%d", i%40)),
			UID: types.UID(hexID(i, 3)[:36]), ResourceVersion: fresh(fmt.Sprint(200000 + i)),
			Labels:      map[string]string{fresh(labelAppName): fresh(fmt.Sprintf("app-%d", i)), fresh("team"): fresh("shop")},
			Annotations: map[string]string{fresh("kubectl.kubernetes.io/last-applied-configuration"): fresh(strings.Repeat("x", 400))},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: fresh("kubectl"), Operation: metav1.ManagedFieldsOperationApply,
				FieldsV1: &metav1.FieldsV1{Raw: []byte(strings.Repeat("{\"f:spec\":{}}", 40))}}},
		}
		if owners {
			m.OwnerReferences = []metav1.OwnerReference{{APIVersion: fresh("apps/v1"), Kind: fresh("Deployment"), Name: fresh(fmt.Sprintf("app-%d", i)), UID: types.UID(hexID(i, 4)[:36]), Controller: ptr(true)}}
		}
		return m
	}
	cases := []struct {
		resource string
		gen      func(i int) k8sruntime.Object
	}{
		{"services", func(i int) k8sruntime.Object {
			ip := fresh(fmt.Sprintf("10.96.%d.%d", i/256, i%256))
			return &corev1.Service{ObjectMeta: meta(i, "svc", false), Spec: corev1.ServiceSpec{
				ClusterIP: ip, ClusterIPs: []string{ip}, Type: corev1.ServiceTypeClusterIP,
				Selector: map[string]string{fresh(labelAppName): fresh(fmt.Sprintf("app-%d", i))},
				Ports:    []corev1.ServicePort{{Name: fresh("http"), Port: 80, Protocol: corev1.ProtocolTCP}},
			}}
		}},
		{"endpointslices", func(i int) k8sruntime.Object {
			s := &discoveryv1.EndpointSlice{ObjectMeta: meta(i, "eps", false), AddressType: discoveryv1.AddressTypeIPv4,
				Ports: []discoveryv1.EndpointPort{{Name: ptr(fresh("http")), Port: ptr(int32(8080))}}}
			s.Labels[fresh(discoveryv1.LabelServiceName)] = fresh(fmt.Sprintf("svc-%05d", i))
			for j := range 3 { // three ready endpoints
				s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
					Addresses:  []string{fresh(fmt.Sprintf("10.%d.%d.%d", 32+j, i/256, i%256))},
					Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)},
					NodeName:   ptr(fresh(testNode)),
					TargetRef:  &corev1.ObjectReference{Kind: fresh("Pod"), Name: fresh(fmt.Sprintf("pod-%05d-%d", i, j)), Namespace: fresh("shop"), UID: types.UID(hexID(i, 30+j)[:36])},
				})
			}
			return s
		}},
		{"replicasets", func(i int) k8sruntime.Object {
			return &appsv1.ReplicaSet{ObjectMeta: meta(i, "rs", true), Spec: appsv1.ReplicaSetSpec{Replicas: ptr(int32(2)),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: fresh("server"), Image: fresh(fmt.Sprintf("registry.example.com/app-%d:1.0", i))}}}}}}
		}},
		{"jobs", func(i int) k8sruntime.Object {
			return &batchv1.Job{ObjectMeta: meta(i, "job", true), Spec: batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: fresh("task"), Image: fresh(fmt.Sprintf("registry.example.com/job-%d:1.0", i))}}}}}}
		}},
	}
	for _, c := range cases {
		t.Run(c.resource, func(t *testing.T) {
			per := retained(t, c.resource, n, c.gen)
			t.Logf("10,000 %s: %.0f bytes retained per object", c.resource, per)
			if max := maxClusterBytes[c.resource]; per > max {
				t.Errorf("the %s cache retains %.0f bytes per object, want at most %.0f", c.resource, per, max)
			}
		})
	}
}
